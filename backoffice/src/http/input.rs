//! Reading what a management request sends: its path and its JSON body, each refused with a
//! 400 that says what is wrong. JSON does not tell `1` from `1.0`, and neither does JSON Schema:
//! a whole number written with a fraction of zero is read as the integer it is.

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::StatusCode;
use proto::api::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

use super::Failure;

/// The largest whole number a JSON float holds exactly (2^53).
const EXACT_FLOAT_MAX: f64 = 9_007_199_254_740_992.0;

/// The body as `T`.
pub(super) fn body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, Failure> {
    typed(json(body)?)
}

/// The body of a `PUT` whose path names the object: the object at `at` (a JSON pointer, `""`
/// for the whole body) takes the path's `id` when it leaves it out; a body naming another id is
/// refused rather than saved under either.
pub(super) fn body_named<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    at: &str,
    what: &str,
    id: &str,
) -> Result<T, Failure> {
    let mut value = json(body)?;
    if let Some(object) = value.pointer_mut(at).and_then(Value::as_object_mut) {
        match object.get("id") {
            None => {
                object.insert("id".to_owned(), Value::String(id.to_owned()));
            }
            Some(Value::String(named)) if named == id => {}
            Some(_) => {
                return Err(Failure::bad_request(format!(
                    "the body's {what} id differs from the path's"
                )));
            }
        }
    }
    typed(value)
}

pub(super) fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, Failure> {
    path.map(|Path(value)| value)
        .map_err(|rejection| Failure::bad_request(rejection.body_text()))
}

fn json(body: Result<Bytes, BytesRejection>) -> Result<Value, Failure> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                "body too large",
            )
        } else {
            Failure::bad_request(rejection.body_text())
        }
    })?;
    let mut value: Value = serde_json::from_slice(&body)
        .map_err(|error| Failure::bad_request(format!("body: {error}")))?;
    whole_numbers_as_integers(&mut value);
    Ok(value)
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|error| Failure::bad_request(format!("body: {error}")))
}

/// Rewrites every float with no fraction, within the floats' exact range, as that integer.
fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() <= EXACT_FLOAT_MAX
            {
                // Exact: `float` is a whole number within ±2^53.
                #[allow(clippy::cast_possible_truncation)]
                let whole = float as i64;
                *number = Number::from(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
        body(Ok(Bytes::from(text.to_owned())))
    }

    #[test]
    fn a_whole_number_written_with_a_zero_fraction_is_that_integer() {
        assert_eq!(
            read::<Vec<i64>>("[0.0, -3.0, 571360.0, 1e3]").unwrap(),
            vec![0, -3, 571_360, 1000]
        );
        assert!(read::<i64>("1.5").is_err());
        assert!(read::<i64>("1e300").is_err());
        assert!(read::<u32>("-1.0").is_err());
    }

    #[test]
    fn the_path_names_the_object_and_a_body_naming_another_is_refused() {
        let read = |text: &str| {
            body_named::<serde_json::Map<String, Value>>(
                Ok(Bytes::from(text.to_owned())),
                "",
                "pupil",
                "p1",
            )
        };
        assert_eq!(read(r#"{"a":1}"#).unwrap()["id"], "p1");
        assert_eq!(read(r#"{"id":"p1"}"#).unwrap()["id"], "p1");
        assert!(read(r#"{"id":"p2"}"#).is_err());
        assert!(read(r#"{"id":7}"#).is_err());
    }
}
