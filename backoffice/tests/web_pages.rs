//! The web pages over raw HTTP on both backends: signing in and out, the lock-out after
//! repeated failures, CSRF refusals, and which role reaches which page. The browser tests
//! (`browser.rs`) walk the same pages as people do; these check every store query behind them
//! on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as common;

use common::Ops as _;

use backoffice::limits::SIGN_IN_FAILURES_MAX;
use backoffice::store::Store;
use backoffice::users::Role;
use backoffice::web::session::SESSION_COOKIE;

use common::app::{Reply, TestApp};
use common::fixtures::{Kiosk, account, meal, populate_with_users};

const PASSWORD: &str = "correct horse battery";

fn location(reply: &Reply) -> &str {
    reply
        .headers
        .iter()
        .find(|(header, _)| header == "location")
        .map_or("", |(_, value)| value.as_str())
}

fn as_session(session: &str) -> Vec<(&'static str, String)> {
    vec![(
        "cookie",
        format!("{SESSION_COOKIE}={session}; canteen_lang=en"),
    )]
}

/// The CSRF token of the first form of a page.
fn csrf_of(page: &Reply) -> String {
    let text = page.text();
    let start = text.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    text[start..start + text[start..].find('"').unwrap()].to_owned()
}

async fn story<S: Store>(store: S) {
    populate_with_users(
        &store,
        PASSWORD,
        &[
            ("martin", Role::Staff, Some("jaures")),
            ("compta", Role::Finance, None),
            ("admin", Role::Admin, None),
            ("shop", Role::Payments, None),
        ],
    )
    .await;
    let mut kiosk = Kiosk::registered(&store, "jaures-entree", 1).await;
    let app = TestApp::start(store).await;
    kiosk.write(meal("A1", 385));
    assert_eq!(app.upload(&kiosk, kiosk.signed(1, 1)).await.status, 200);

    // The payment provider's user has no pages; a wrong password is refused alike.
    assert_eq!(app.sign_in("shop", PASSWORD).await.0.status, 401);
    assert_eq!(app.sign_in("martin", "wrong password!").await.0.status, 401);

    let mut sessions = std::collections::BTreeMap::new();
    for name in ["martin", "compta", "admin"] {
        let (reply, session) = app.sign_in(name, PASSWORD).await;
        assert_eq!(reply.status, 303, "{name}: {}", reply.text());
        sessions.insert(name, session.unwrap());
    }
    let checks: &[(&str, &str, u16, &str)] = &[
        ("martin", "/", 303, ""),
        ("martin", "/staff?q=l%C3%A9a", 200, "P1"),
        ("martin", "/staff?q=01010101", 200, "P1"),
        ("martin", "/staff?q=P9", 200, "Nothing found"),
        ("martin", "/staff/accounts/A1", 200, "-€3.85"),
        ("martin", "/staff/accounts/A9", 403, "Access denied"),
        ("martin", "/staff/accounts/NOPE", 404, "Not found"),
        // A site's meals are those of a service day, whatever the kiosk's clock said.
        ("martin", "/staff/meals?day=2026-11-30", 200, "P00001"),
        (
            "martin",
            "/staff/meals?day=2026-11-29",
            200,
            "<strong>0</strong> meals served",
        ),
        ("martin", "/finance", 403, "Access denied"),
        ("martin", "/admin/devices", 403, "Access denied"),
        ("compta", "/staff/accounts/A9", 200, "Balance"),
        ("compta", "/finance", 200, "Meals per day"),
        ("compta", "/finance/kiosks", 200, "jaures-entree"),
        (
            "compta",
            "/finance/reconciliations?date=2026-11-30",
            200,
            "not reconciled yet",
        ),
        (
            "compta",
            "/staff/meals?site=jaures&day=2026-11-30",
            200,
            "P00001",
        ),
        ("compta", "/admin", 403, "Access denied"),
        ("admin", "/admin", 200, "ferry"),
        ("admin", "/admin/devices", 200, "jaures-entree"),
        ("admin", "/admin/users", 200, "compta"),
        ("admin", "/admin/sites/jaures", 200, "Déjeuner"),
        ("admin", "/admin/import", 200, "first_name"),
        ("admin", "/finance/kiosks", 200, "jaures-entree"),
    ];
    for (name, path, status, text) in checks {
        let reply = app
            .request("GET", path, &as_session(&sessions[name]), b"")
            .await;
        assert_eq!(reply.status, *status, "{name} {path}: {}", reply.text());
        assert!(
            reply.text().contains(text),
            "{name} {path}: {}",
            reply.text()
        );
    }
    assert_eq!(
        app.request("GET", "/staff/accounts/A1", &[], b"")
            .await
            .status,
        303,
        "no session, no page"
    );

    // A form without the session's CSRF token changes nothing; with it, the top-up is made.
    let staff = as_session(&sessions["martin"]);
    let page = app.request("GET", "/staff/accounts/A1", &staff, b"").await;
    let csrf = csrf_of(&page);
    let top_up = "amount=10&method=cash&reference=&confirm=yes";
    for body in [top_up.to_owned(), format!("csrf=forged&{top_up}")] {
        let reply = app
            .request("POST", "/staff/accounts/A1/top-up", &staff, body.as_bytes())
            .await;
        assert_eq!(reply.status, 403, "{body}");
    }
    assert_eq!(
        app.store
            .balance(&account("A1"))
            .await
            .unwrap()
            .unwrap()
            .get(),
        -385
    );
    let reply = app
        .request(
            "POST",
            "/staff/accounts/A1/top-up",
            &staff,
            format!("csrf={csrf}&{top_up}").as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("€6.15"), "{}", reply.text());
    assert_eq!(
        app.store
            .balance(&account("A1"))
            .await
            .unwrap()
            .unwrap()
            .get(),
        615
    );

    // Signing out ends the session in the store: the cookie is worth nothing afterwards.
    let reply = app
        .request(
            "POST",
            "/sign-out",
            &staff,
            format!("csrf={csrf}").as_bytes(),
        )
        .await;
    assert_eq!((reply.status, location(&reply)), (303, "/sign-in"));
    let reply = app.request("GET", "/staff", &staff, b"").await;
    assert_eq!((reply.status, location(&reply)), (303, "/sign-in"));

    // A sign-in form posted without its own cookie's token is refused.
    let reply = app
        .request(
            "POST",
            "/sign-in",
            &[],
            format!("csrf=x&name=admin&password={PASSWORD}").as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 403);

    // Repeated failures lock the name, even with the right password afterwards; other names
    // are not affected.
    for _ in 0..SIGN_IN_FAILURES_MAX {
        assert_eq!(
            app.sign_in("compta", "not the password").await.0.status,
            401
        );
    }
    let (locked, session) = app.sign_in("compta", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.text());
    assert!(session.is_none());
    assert_eq!(app.sign_in("admin", PASSWORD).await.0.status, 303);
}

/// City IT's forms: a tariff, a meal service and a user's role, each refused with the reason
/// when a field is wrong (nothing saved), saved and shown when right.
async fn city_it_story<S: Store>(store: S) {
    populate_with_users(
        &store,
        PASSWORD,
        &[
            ("martin", Role::Staff, Some("jaures")),
            ("admin", Role::Admin, None),
        ],
    )
    .await;
    let app = TestApp::start(store).await;
    let admin = as_session(&app.sign_in("admin", PASSWORD).await.1.unwrap());
    let site = app.request("GET", "/admin/sites/jaures", &admin, b"").await;
    let csrf = csrf_of(&site);
    let post = |path: &'static str, form: &'static str| {
        let (app, admin, csrf) = (&app, &admin, &csrf);
        async move {
            let body = format!("csrf={csrf}&{form}");
            app.request("POST", path, admin, body.as_bytes()).await
        }
    };
    let refusals: &[(&str, &str, &str)] = &[
        (
            "/admin/sites/jaures/tariffs",
            "bracket=q3&meal_type=lunch&price=lots",
            "role=\"alert\">Price (€): lots<",
        ),
        (
            "/admin/sites/jaures/services",
            "id=dinner&name=D%C3%AEner&meal_type=dinner&weekday=monday&start=19%3A00&end=18%3A00",
            "role=\"alert\">a service ends after it starts",
        ),
        (
            "/admin/users/martin",
            "role=staff&site=&password=",
            "role=\"alert\">a staff user needs",
        ),
    ];
    for (path, form, reason) in refusals {
        let reply = post(path, form).await;
        assert_eq!(reply.status, 400, "{path} {form}: {}", reply.text());
        assert!(reply.text().contains(reason), "{path}: {}", reply.text());
    }
    let saved: &[(&str, &str, &str)] = &[
        (
            "/admin/sites/jaures/tariffs",
            "bracket=q3&meal_type=lunch&price=4.10",
            "/admin/sites/jaures?done=saved",
        ),
        (
            "/admin/sites/jaures/services",
            "id=dinner&name=D%C3%AEner&meal_type=dinner&weekday=monday&weekday=friday&start=18%3A30&end=20%3A00",
            "/admin/sites/jaures?done=saved",
        ),
        (
            "/admin/users/martin",
            "role=finance&site=&password=",
            "/admin/users?done=saved",
        ),
    ];
    for (path, form, back) in saved {
        let reply = post(path, form).await;
        assert_eq!(
            (reply.status, location(&reply)),
            (303, *back),
            "{path}: {}",
            reply.text()
        );
    }
    let site = app
        .request("GET", "/admin/sites/jaures", &admin, b"")
        .await
        .text();
    assert!(site.contains("€4.10"), "{site}");
    assert!(!site.contains("€3.85"), "{site}");
    assert!(site.contains("Dîner") && site.contains("18:30"), "{site}");
    let users = app.request("GET", "/admin/users", &admin, b"").await.text();
    let martin = &users[users.find("martin").unwrap()..];
    assert!(
        martin[..martin.find("</tr>").unwrap()].contains("finance"),
        "{users}"
    );
    // Now finance, martin no longer reaches the staff pages.
    let martin = as_session(&app.sign_in("martin", PASSWORD).await.1.unwrap());
    let reply = app.request("GET", "/staff/accounts/A1", &martin, b"").await;
    assert_eq!(reply.status, 200, "finance reads every account");
    let reply = app
        .request("POST", "/staff/accounts/A1/top-up", &martin, b"")
        .await;
    assert_eq!(reply.status, 403, "finance takes no cash");
}

common::on_each_backend!(
    (story, pages_on_sqlite, pages_on_postgres),
    (
        city_it_story,
        city_it_forms_on_sqlite,
        city_it_forms_on_postgres
    ),
);
