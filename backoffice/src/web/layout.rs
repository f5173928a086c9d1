//! The page shell (navigation by role, language switch, sign-out), the embedded style sheet,
//! and how money, times and days are shown.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use proto::{Cents, ServiceDate, Timestamp};

use super::i18n::{Lang, Msg};
use super::session::{CSRF_FIELD, Viewer};
use crate::users::Role;

/// The whole style sheet, embedded in each page: nothing is fetched at run time. Colours keep
/// a contrast of at least 4.5:1; focus is always visible; tables scroll inside narrow screens.
const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1a1a1a;background:#f6f7f9}
a{color:#0b4f9c}
header{background:#0b3d78;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
header a{color:#fff}
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
header .who{margin-left:auto;display:flex;gap:.75rem;align-items:center;flex-wrap:wrap}
header a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
section.card{background:#fff;border:1px solid #c9ced6;border-radius:6px;padding:1rem;margin:0 0 1rem}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
label{display:block;font-weight:600;margin:.25rem 0}
input,select,textarea,button{font:inherit}
input,select,textarea{padding:.45rem .5rem;border:1px solid #6b7280;border-radius:4px;background:#fff;color:#1a1a1a;max-width:100%}
textarea{width:100%}
button,.button{display:inline-block;padding:.5rem 1rem;border:0;border-radius:4px;background:#0b4f9c;color:#fff;cursor:pointer;text-decoration:none}
button.secondary{background:#4b5563}
button.danger{background:#a4161a}
header button{background:#fff;color:#0b3d78;padding:.25rem .75rem}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d8dce2;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.alert td,tr.alert th{background:#fde8e8}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.85rem;font-weight:600}
.badge.bad{background:#a4161a;color:#fff}
.badge.ok{background:#1b6e3a;color:#fff}
.notice{padding:.75rem 1rem;border-radius:4px;margin:0 0 1rem;background:#e6f0fb;border-left:4px solid #0b4f9c}
.error{padding:.75rem 1rem;border-radius:4px;margin:0 0 1rem;background:#fde8e8;border-left:4px solid #a4161a}
.balance{font-size:2rem;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}
.chart svg{width:100%;height:auto;background:#fff}
.receipt{max-width:28rem;border:1px dashed #6b7280;padding:1rem;background:#fff}
.receipt dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}
.receipt dt{font-weight:600}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media print{header,.no-print{display:none}body{background:#fff}main{padding:0}.receipt{border:0}}
"#;

/// A full page for a signed-in user; `path` marks the current navigation entry and is where
/// the language switch comes back to.
pub fn page(viewer: &Viewer, title: &str, path: &str, content: Markup) -> Response {
    let lang = viewer.lang;
    let nav: Vec<(&str, Msg)> = match viewer.user.role {
        Role::Staff | Role::Payments => {
            vec![("/staff", Msg::NavSearch), ("/staff/meals", Msg::NavMeals)]
        }
        Role::Finance => vec![
            ("/finance", Msg::NavDashboard),
            ("/finance/reconciliations", Msg::NavReconciliation),
            ("/finance/kiosks", Msg::NavFleet),
            ("/staff", Msg::NavSearch),
        ],
        Role::Admin => vec![
            ("/admin", Msg::NavAdmin),
            ("/admin/devices", Msg::NavDevices),
            ("/admin/users", Msg::NavUsers),
            ("/admin/import", Msg::NavImport),
            ("/staff", Msg::NavSearch),
            ("/finance", Msg::NavDashboard),
            ("/finance/reconciliations", Msg::NavReconciliation),
            ("/finance/kiosks", Msg::NavFleet),
        ],
    };
    let body = html! {
        header {
            strong { (Msg::AppName.text(lang)) }
            nav aria-label=(Msg::NavLabel.text(lang)) {
                ul {
                    @for (href, label) in &nav {
                        li {
                            @if *href == path {
                                a href=(href) aria-current="page" { (label.text(lang)) }
                            } @else {
                                a href=(href) { (label.text(lang)) }
                            }
                        }
                    }
                }
            }
            div.who {
                span { (viewer.user.name) " · " (role_name(lang, viewer.user.role))
                    @if let Some(site) = &viewer.user.site { " · " (site) } }
                (language_switch(lang, path))
                form method="post" action="/sign-out" {
                    (csrf(viewer))
                    button type="submit" { (Msg::SignOut.text(lang)) }
                }
            }
        }
        main id="main" {
            h1 { (title) }
            (content)
        }
    };
    document(lang, title, body)
}

/// A page of the navigation, titled with its entry's `label`.
pub fn nav_page(viewer: &Viewer, label: Msg, path: &str, content: Markup) -> Response {
    page(viewer, label.text(viewer.lang), path, content)
}

fn document(lang: Lang, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (Msg::AppName.text(lang)) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn language_switch(lang: Lang, path: &str) -> Markup {
    html! {
        nav aria-label=(Msg::LanguageLabel.text(lang)) {
            @for other in Lang::ALL {
                @if other == lang {
                    strong lang=(other.code()) { (other.code().to_uppercase()) } " "
                } @else {
                    a lang=(other.code()) hreflang=(other.code())
                        href={ "/language?to=" (other.code()) "&back=" (path) }
                        title=(other.name()) { (other.code().to_uppercase()) } " "
                }
            }
        }
    }
}

/// The hidden field every form of a session carries.
pub fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(viewer.csrf); }
}

pub fn error_page(lang: Lang, title: Msg, detail: Option<&str>) -> Response {
    let body = html! {
        main id="main" {
            h1 { (title.text(lang)) }
            @if let Some(detail) = detail { p.error role="alert" { (detail) } }
            p { a href="/" { (Msg::BackHome.text(lang)) } }
        }
    };
    document(lang, title.text(lang), body)
}

pub fn sign_in_page(lang: Lang, token: &str, error: Option<Msg>) -> Response {
    let body = html! {
        header { strong { (Msg::AppName.text(lang)) } div.who { (language_switch(lang, "/sign-in")) } }
        main id="main" {
            h1 { (Msg::SignIn.text(lang)) }
            @if let Some(error) = error { p.error role="alert" { (error.text(lang)) } }
            section.card style="max-width:24rem" {
                form method="post" action="/sign-in" {
                    input type="hidden" name=(CSRF_FIELD) value=(token);
                    label for="name" { (Msg::UserName.text(lang)) }
                    input id="name" name="name" autocomplete="username" required autofocus;
                    label for="password" { (Msg::Password.text(lang)) }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    p { button type="submit" { (Msg::SignIn.text(lang)) } }
                }
            }
        }
    };
    document(lang, Msg::SignIn.text(lang), body)
}

pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Staff => Msg::RoleStaff,
        Role::Finance => Msg::RoleFinance,
        Role::Admin => Msg::RoleAdmin,
        Role::Payments => Msg::RolePayments,
    }
    .text(lang)
}

/// `12,50 €` in French and German, `€12.50` in English.
pub fn money(lang: Lang, amount: Cents) -> String {
    match lang {
        Lang::Fr | Lang::De => amount.to_french(),
        Lang::En => {
            let cents = amount.get();
            let sign = if cents < 0 { "-" } else { "" };
            let cents = cents.unsigned_abs();
            format!("{sign}€{}.{:02}", cents / 100, cents % 100)
        }
    }
}

/// Euros as typed in a form (`12`, `12,5`, `12.50`) in cents; at most two decimals.
pub fn parse_euros(text: &str) -> Option<Cents> {
    let text = text.trim().trim_end_matches('€').trim();
    let (whole, fraction) = match text.split_once([',', '.']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 9
        || !digits(whole)
        || fraction.len() > 2
        || !digits(fraction)
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    Some(Cents::new(whole * 100 + fraction))
}

fn time_zone() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(super::SITE_TIME_ZONE).unwrap_or(jiff::tz::TimeZone::UTC)
}

fn zoned(at: Timestamp) -> Option<jiff::Zoned> {
    jiff::Timestamp::from_millisecond(at.unix_ms())
        .ok()
        .map(|instant| instant.to_zoned(time_zone()))
}

/// A moment in the sites' local time: `2026-11-30 12:05`.
pub fn local_time(at: Timestamp) -> String {
    zoned(at).map_or_else(
        || at.to_string(),
        |zoned| zoned.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Only the time of day: `12:05:33`.
pub fn local_clock(at: Timestamp) -> String {
    zoned(at).map_or_else(
        || at.to_string(),
        |zoned| zoned.strftime("%H:%M:%S").to_string(),
    )
}

/// The sites' service day at `at`.
pub fn service_day(at: Timestamp) -> Option<ServiceDate> {
    let zoned = zoned(at)?;
    ServiceDate::parse(&zoned.strftime("%Y-%m-%d").to_string()).ok()
}

/// The first and the last instant (excluded) of a service day, in the sites' time zone.
pub fn day_bounds(day: ServiceDate) -> Option<(Timestamp, Timestamp)> {
    let date: jiff::civil::Date = day.to_string().parse().ok()?;
    let start = date.to_zoned(time_zone()).ok()?;
    let end = date.tomorrow().ok()?.to_zoned(time_zone()).ok()?;
    let start = Timestamp::from_unix_ms(start.timestamp().as_millisecond()).ok()?;
    let end = Timestamp::from_unix_ms(end.timestamp().as_millisecond()).ok()?;
    Some((start, end))
}

/// The service day `days` before `day`.
pub fn days_before(day: ServiceDate, days: i64) -> Option<ServiceDate> {
    let date: jiff::civil::Date = day.to_string().parse().ok()?;
    let earlier = date.checked_sub(jiff::Span::new().days(days)).ok()?;
    ServiceDate::parse(&earlier.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use proto::{Cents, ServiceDate};

    use super::{day_bounds, days_before, money, parse_euros};
    use crate::web::i18n::Lang;

    fn check(text: &str, expected: Option<i64>) {
        assert_eq!(parse_euros(text), expected.map(Cents::new), "{text:?}");
    }

    #[test]
    fn euros() {
        check("12", Some(1_200));
        check("12,5", Some(1_250));
        check("12.50", Some(1_250));
        check(" 0,05 € ", Some(5));
        check("1234,56", Some(123_456));
        check("", None);
        check("-5", None);
        check("1,234", None);
        check("1.2.3", None);
        check(",50", None);
        check("12a", None);
        check("9999999999", None);
    }

    #[test]
    fn money_in_each_language() {
        assert_eq!(money(Lang::En, Cents::new(1_250)), "€12.50");
        assert_eq!(money(Lang::En, Cents::new(-5)), "-€0.05");
        assert_eq!(money(Lang::Fr, Cents::new(1_250)), "12,50 €");
    }

    #[test]
    fn days() {
        let day = ServiceDate::parse("2026-03-29").unwrap();
        let (start, end) = day_bounds(day).unwrap();
        // The spring change to summer time: a day of 23 hours, starting at 23:00 UTC.
        assert_eq!(start.to_string(), "2026-03-28T23:00:00.000Z");
        assert_eq!(end.unix_ms() - start.unix_ms(), 23 * 3_600_000);
        assert_eq!(days_before(day, 30).unwrap().to_string(), "2026-02-27");
    }
}
