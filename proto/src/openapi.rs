//! The JSON Schemas of the types that parse rather than validate, for the back-office's OpenAPI
//! document (the `openapi` feature). Each states what the type's parser accepts, with the bounds
//! of `limits.rs`, so a client can check a value before sending it.

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Object, RefOr};

use crate::limits::{
    ID_CHARS_MAX, MEAL_PRICE_CENTS_MAX, OVERDRAFT_FLOOR_CENTS_MIN, REQUEST_NONCE_CHARS_MAX,
    SEQ_MAX, TEXT_CHARS_MAX,
};

/// An identifier (`ids::parse_id`): ASCII letters, digits, `-`, `_`, `.`, starting with a letter
/// or digit.
pub(crate) fn id(what: &str) -> RefOr<Schema> {
    string(
        format!("A {what}: 1 to {ID_CHARS_MAX} ASCII letters, digits, '-', '_' or '.', starting with a letter or digit."),
        "^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )
    .min_length(Some(1))
    .max_length(Some(ID_CHARS_MAX))
    .into()
}

/// Free text (`Text::parse`). JSON Schema counts characters as `Text` does.
pub(crate) fn text() -> RefOr<Schema> {
    // No control character anywhere (Unicode category Cc); no space first or last.
    let visible = r"[^\s\x00-\x1f\x7f-\x9f]";
    let any = r"[^\x00-\x1f\x7f-\x9f]";
    string(
        format!("Free text: 1 to {TEXT_CHARS_MAX} characters, no control characters, no spaces first or last."),
        format!("^{visible}(?:{any}*{visible})?$"),
    )
    .min_length(Some(1))
    .max_length(Some(TEXT_CHARS_MAX))
    .into()
}

/// A card's holder, `{"pupil": id}` or `{"staff": id}`: one key, nothing else.
pub(crate) fn card_holder() -> RefOr<Schema> {
    let holder = |key: &str, what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(key, id(what))
            .required(key)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .description(Some("Who carries the card: a pupil or a staff member."))
        .item(holder("pupil", "pupil id"))
        .item(holder("staff", "staff id"))
        .into()
}

/// A card UID (`CardUid::from_hex`): 4, 7 or 10 bytes in lowercase hex.
pub(crate) fn card_uid() -> RefOr<Schema> {
    string(
        "A contactless card's UID: 4, 7 or 10 bytes, lowercase hexadecimal.",
        "^(?:[0-9a-f]{8}|[0-9a-f]{14}|[0-9a-f]{20})$",
    )
    .into()
}

/// A SHA-256 digest (`Digest::from_hex`).
pub(crate) fn digest() -> RefOr<Schema> {
    string("A SHA-256 digest, lowercase hexadecimal.", "^[0-9a-f]{64}$").into()
}

/// A service date (`ServiceDate::parse`).
pub(crate) fn service_date() -> RefOr<Schema> {
    string(
        "A calendar day in the site's local time, YYYY-MM-DD.",
        "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    )
    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
    .into()
}

/// A timestamp (`Timestamp::parse`): one RFC 3339 spelling only.
pub(crate) fn timestamp() -> RefOr<Schema> {
    string(
        "An instant in UTC with milliseconds, such as 2026-11-29T11:45:03.120Z.",
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
    )
    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
    .into()
}

/// A time of day (`LocalTime::parse`).
pub(crate) fn local_time() -> RefOr<Schema> {
    string(
        "A time of day in the site's local time, HH:MM.",
        "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$",
    )
    .into()
}

/// A record's position in its kiosk's chain (`Seq::new`).
pub(crate) fn seq() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(
            "A record's position in its kiosk's chain, from 1 (2^53 - 1 at most).",
        ))
        .minimum(Some(1))
        .maximum(Some(SEQ_MAX))
        .into()
}

/// A standard base64 Ed25519 signature (`Signature::from_base64`): 64 bytes, 88 characters.
pub fn signature() -> Object {
    string(
        "An Ed25519 signature (64 bytes), standard base64 with padding.",
        "^[A-Za-z0-9+/]{86}==$",
    )
    .build()
}

/// A signed request's nonce (`RequestToSign::verify`).
pub fn nonce() -> Object {
    string(
        format!(
            "16 to {REQUEST_NONCE_CHARS_MAX} ASCII letters or digits, unique per request of the kiosk."
        ),
        format!("^[A-Za-z0-9]{{16,{REQUEST_NONCE_CHARS_MAX}}}$"),
    )
    .build()
}

/// An amount in cents within `minimum..=maximum`, for the request fields that bound one.
pub fn cents_within(minimum: i64, maximum: i64, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(description))
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .build()
}

/// A kiosk's result display time (`limits::RESULT_DISPLAY_MS`).
pub(crate) fn result_display_ms() -> Object {
    millis_within(
        &crate::limits::RESULT_DISPLAY_MS,
        "How long a pupil's result stays on screen, in milliseconds.",
    )
}

/// A kiosk's sync interval (`limits::SYNC_INTERVAL_MS`).
pub(crate) fn sync_interval_ms() -> Object {
    millis_within(
        &crate::limits::SYNC_INTERVAL_MS,
        "How often the kiosk syncs when online, in milliseconds.",
    )
}

/// Staff mode's idle sign-out (`limits::STAFF_IDLE_SIGNOUT_MS`).
pub(crate) fn staff_idle_signout_ms() -> Object {
    millis_within(
        &crate::limits::STAFF_IDLE_SIGNOUT_MS,
        "Staff mode signs out after this much inactivity, in milliseconds.",
    )
}

fn millis_within(range: &std::ops::RangeInclusive<u32>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .description(Some(description))
        .minimum(Some(*range.start()))
        .maximum(Some(*range.end()))
        .build()
}

fn string(description: impl Into<String>, pattern: impl Into<String>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
}

/// A meal's price: 0 to [`MEAL_PRICE_CENTS_MAX`] cents.
pub(crate) fn meal_price() -> Object {
    cents_within(0, MEAL_PRICE_CENTS_MAX, "Euro cents.")
}

/// An account's overdraft floor: [`OVERDRAFT_FLOOR_CENTS_MIN`] to 0 cents.
pub(crate) fn overdraft_floor() -> Object {
    cents_within(
        OVERDRAFT_FLOOR_CENTS_MIN,
        0,
        "Euro cents: how far below zero the balance may go.",
    )
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::limits::{DIETARY_FLAGS_MAX, UPLOAD_BATCH_RECORDS_MAX};

    /// The `maxItems` of `field` in `schema`'s properties.
    fn max_items(schema: RefOr<Schema>, field: &str) -> Option<u64> {
        let json = serde_json::to_value(schema).ok()?;
        json["properties"][field]["maxItems"].as_u64()
    }

    /// Bounds written as literals in derive attributes, where a constant is not accepted.
    #[test]
    fn literal_bounds_are_the_limits() {
        let records = max_items(crate::api::UploadRequest::schema(), "records");
        assert_eq!(records, u64::try_from(UPLOAD_BATCH_RECORDS_MAX).ok());
        let dietary = max_items(crate::snapshot::Pupil::schema(), "dietary");
        assert_eq!(dietary, u64::try_from(DIETARY_FLAGS_MAX).ok());
    }
}
