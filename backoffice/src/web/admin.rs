//! City IT's pages: kiosks (enrol from the public key `kiosk init` printed, revoke), users
//! and their roles, each site's tariffs and services, and the CSV import of accounts, pupils
//! and cards, whose every error is shown before anything is written.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use proto::snapshot::{LocalTime, Service, Tariff, Weekday};
use proto::{BracketId, DeviceId, MealType, PublicKey, ServiceId, SiteId, Text};

use super::i18n::{Lang, Msg};
use super::layout::{self, csrf, money, nav_page, page, role_name};
use super::session::{Form, Viewer, signed_form, viewer};
use super::{DoneQuery, PageError, PageErrorKind, PageResult, see_other};
use crate::import::{self, ImportError, ImportRow, LineError};
use crate::limits::IMPORT_PREVIEW_ROWS;
use crate::manage::{self, devices, sites, users};
use crate::state::SharedApp;
use crate::store::{Device, Store};
use crate::users::{Role, User};

const ROLES: &[Role] = manage::ADMIN;

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "monday"),
    (Weekday::Tuesday, "tuesday"),
    (Weekday::Wednesday, "wednesday"),
    (Weekday::Thursday, "thursday"),
    (Weekday::Friday, "friday"),
    (Weekday::Saturday, "saturday"),
    (Weekday::Sunday, "sunday"),
];

/// What City IT's forms tell when they come back.
const DONE_NOTICES: &[(&str, Msg)] = &[("saved", Msg::DoneSaved), ("revoked", Msg::DoneRevoked)];

/// `GET /admin`: the sites, each with its tariffs and services.
pub async fn index<S: Store>(State(app): State<SharedApp<S>>, headers: HeaderMap) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let sites = sites::list(&app.store, &viewer.actor())
        .await
        .map_err(PageError::manage(lang))?;
    let content = html! {
        div.grid {
            section.card {
                h2 { (Msg::NavDevices.text(lang)) }
                p { a href="/admin/devices" { (Msg::DevicesHelp.text(lang)) } }
            }
            section.card {
                h2 { (Msg::NavUsers.text(lang)) }
                p { a href="/admin/users" { (Msg::UsersHelp.text(lang)) } }
            }
            section.card {
                h2 { (Msg::NavImport.text(lang)) }
                p { a href="/admin/import" { (Msg::ImportHelp.text(lang)) } }
            }
        }
        h2 { (Msg::SitesTitle.text(lang)) }
        ul {
            @for site in &sites { li { a href={ "/admin/sites/" (site) } { (site) } } }
        }
        form.inline method="get" action="/admin/sites/" onsubmit="this.action='/admin/sites/'+encodeURIComponent(this.site.value);" {
            div {
                label for="new-site" { (Msg::OtherSite.text(lang)) }
                input id="new-site" name="site" required pattern="[A-Za-z0-9._\\-]{1,64}";
            }
            button type="submit" { (Msg::Show.text(lang)) }
        }
    };
    Ok(nav_page(&viewer, Msg::NavAdmin, "/admin", content))
}

/// `GET /admin/devices`.
pub async fn devices<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let devices: Vec<Device> = devices::list(&app.store, &viewer.actor())
        .await
        .map_err(PageError::manage(lang))?
        .into_iter()
        .map(|entry| entry.device)
        .collect();
    let content = html! {
        (query.notice(lang, DONE_NOTICES))
        section.card {
            h2 { (Msg::EnrolKiosk.text(lang)) }
            form method="post" action="/admin/devices" {
                (csrf(&viewer))
                label for="device-id" { (Msg::Kiosk.text(lang)) }
                input id="device-id" name="id" required size="40";
                label for="device-site" { (Msg::Site.text(lang)) }
                input id="device-site" name="site" required;
                label for="device-key" { (Msg::PublicKeyPem.text(lang)) }
                textarea id="device-key" name="public_key" rows="4" required
                    placeholder="-----BEGIN PUBLIC KEY-----" {}
                p { button type="submit" { (Msg::Enrol.text(lang)) } }
            }
        }
        div.table { table id="devices" {
            thead { tr {
                th scope="col" { (Msg::Kiosk.text(lang)) }
                th scope="col" { (Msg::Site.text(lang)) }
                th scope="col" { (Msg::KeyFingerprint.text(lang)) }
                th scope="col" { (Msg::State.text(lang)) }
            } }
            tbody {
                @for device in &devices {
                    tr {
                        th scope="row" { (device.id) }
                        td { (device.site) }
                        td { code { (device.key.fingerprint()) } }
                        td {
                            @if let Some(at) = device.revoked_at {
                                span.badge { (Msg::Revoked.text(lang)) } " " (layout::local_time(at))
                            } @else {
                                form.inline method="post" action={ "/admin/devices/" (device.id) "/revoke" }
                                    onsubmit={ "return confirm(" (serde_json::to_string(Msg::RevokeConfirm.text(lang)).unwrap_or_default()) ")" } {
                                    (csrf(&viewer))
                                    button.danger type="submit" { (Msg::Revoke.text(lang)) }
                                }
                            }
                        }
                    }
                }
            }
        } }
    };
    Ok(nav_page(
        &viewer,
        Msg::NavDevices,
        "/admin/devices",
        content,
    ))
}

/// `POST /admin/devices`: enrols a kiosk from its PEM public key.
pub async fn enrol<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let id = DeviceId::parse(form.get("id"))
        .map_err(|error| PageError::field(lang, Msg::Kiosk, error))?;
    let site = SiteId::parse(form.get("site"))
        .map_err(|error| PageError::field(lang, Msg::Site, error))?;
    let key = PublicKey::from_pem(form.get("public_key"))
        .map_err(|error| PageError::field(lang, Msg::PublicKeyPem, error))?;
    let device = Device {
        id: id.clone(),
        site,
        key,
        revoked_at: None,
    };
    devices::add(&app.store, &viewer.actor(), &device, app.clock.now())
        .await
        .map_err(PageError::manage(lang))?;
    tracing::info!(device = %id, user = viewer.user.name, "kiosk enrolled from the web pages");
    Ok(see_other("/admin/devices?done=saved"))
}

/// `POST /admin/devices/{device}/revoke`.
pub async fn revoke<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(device): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, _) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let id = DeviceId::parse(&device).map_err(PageError::not_found(lang))?;
    devices::revoke(&app.store, &viewer.actor(), &id, app.clock.now())
        .await
        .map_err(PageError::manage(lang))?;
    tracing::info!(device = %id, user = viewer.user.name, "kiosk revoked from the web pages");
    Ok(see_other("/admin/devices?done=revoked"))
}

/// `POST /admin/users/{name}/disabled`: `disabled=true` disables the user (their sessions end),
/// `disabled=false` lets them sign in again.
pub async fn set_user_disabled<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let disabled = form.get("disabled") == "true";
    users::set_disabled(
        &app.store,
        &viewer.actor(),
        &name,
        disabled,
        app.clock.now(),
    )
    .await
    .map_err(PageError::manage(lang))?;
    tracing::info!(
        user = name,
        disabled,
        by = viewer.user.name,
        "user access changed from the web pages"
    );
    Ok(see_other("/admin/users?done=saved"))
}

/// `GET /admin/users`.
pub async fn users<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let users = users::list(&app.store, &viewer.actor())
        .await
        .map_err(PageError::manage(lang))?;
    let content = html! {
        (query.notice(lang, DONE_NOTICES))
        (add_user_form(&viewer))
        (users_table(&viewer, &users))
    };
    Ok(nav_page(&viewer, Msg::NavUsers, "/admin/users", content))
}

/// A choice of every role, `current` chosen.
fn role_select(lang: Lang, id: &str, current: Option<Role>) -> Markup {
    html! {
        select id=(id) name="role" {
            @for role in Role::ALL {
                option value=(role.as_str()) selected[Some(role) == current] { (role_name(lang, role)) }
            }
        }
    }
}

fn add_user_form(viewer: &Viewer) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            h2 { (Msg::AddUser.text(lang)) }
            form method="post" action="/admin/users" {
                (csrf(viewer))
                label for="user-name" { (Msg::UserName.text(lang)) }
                input id="user-name" name="name" required autocomplete="off";
                label for="user-role" { (Msg::Role.text(lang)) }
                (role_select(lang, "user-role", Some(Role::Staff)))
                label for="user-site" { (Msg::SiteForStaff.text(lang)) }
                input id="user-site" name="site";
                label for="user-password" { (Msg::Password.text(lang)) }
                input id="user-password" name="password" type="password" required minlength=(crate::limits::PASSWORD_CHARS_MIN) autocomplete="new-password";
                p { button type="submit" { (Msg::Save.text(lang)) } }
            }
        }
    }
}

/// Every user, each with the form to change their role, site or password.
fn users_table(viewer: &Viewer, users: &[User]) -> Markup {
    let lang = viewer.lang;
    html! {
        div.table { table id="users" {
            thead { tr {
                th scope="col" { (Msg::UserName.text(lang)) }
                th scope="col" { (Msg::Role.text(lang)) " / " (Msg::Site.text(lang)) " / " (Msg::NewPassword.text(lang)) }
            } }
            tbody {
                @for user in users {
                    tr {
                        th scope="row" {
                            (user.name)
                            @if user.disabled { " (" (Msg::UserDisabled.text(lang)) ")" }
                        }
                        td { (user_form(viewer, user)) (access_form(viewer, user)) }
                    }
                }
            }
        } }
    }
}

/// The button that disables a user, or enables a disabled one.
fn access_form(viewer: &Viewer, user: &User) -> Markup {
    let lang = viewer.lang;
    let (value, label) = if user.disabled {
        ("false", Msg::EnableUser)
    } else {
        ("true", Msg::DisableUser)
    };
    html! {
        form.inline method="post" action={ "/admin/users/" (user.name) "/disabled" } {
            (csrf(viewer))
            input type="hidden" name="disabled" value=(value);
            button type="submit" { (label.text(lang)) }
        }
    }
}

fn user_form(viewer: &Viewer, user: &User) -> Markup {
    let lang = viewer.lang;
    html! {
        form.inline method="post" action={ "/admin/users/" (user.name) } {
            (csrf(viewer))
            div {
                label for={ "role-" (user.name) } { (Msg::Role.text(lang)) }
                (role_select(lang, &format!("role-{}", user.name), Some(user.role)))
            }
            div {
                label for={ "site-" (user.name) } { (Msg::Site.text(lang)) }
                input id={ "site-" (user.name) } name="site" size="12"
                    value=(user.site.as_ref().map(SiteId::as_str).unwrap_or_default());
            }
            div {
                label for={ "password-" (user.name) } { (Msg::NewPassword.text(lang)) }
                input id={ "password-" (user.name) } name="password" type="password" size="16" autocomplete="new-password";
            }
            button type="submit" { (Msg::Save.text(lang)) }
        }
    }
}

fn role_and_site(lang: Lang, form: &Form) -> Result<(Role, Option<SiteId>), PageError> {
    let role = Role::parse(form.get("role"))
        .ok_or_else(|| PageError::field(lang, Msg::Role, form.get("role")))?;
    let site = match form.get("site") {
        "" => None,
        site => {
            Some(SiteId::parse(site).map_err(|error| PageError::field(lang, Msg::Site, error))?)
        }
    };
    Ok((role, site))
}

/// A user with the rules of `User::new` and their password hashed. Argon2 is deliberately
/// slow: the hash is computed off the threads that serve requests.
async fn new_user(
    lang: Lang,
    name: String,
    role: Role,
    site: Option<SiteId>,
    password: String,
) -> Result<User, PageError> {
    tokio::task::spawn_blocking(move || User::new(&name, role, site, &password))
        .await
        .map_err(|_| PageError::invalid(lang, "hashing failed"))?
        .map_err(|error| PageError::invalid(lang, error.to_string()))
}

/// `POST /admin/users`: a new user; the same rules as `backoffice user add`.
pub async fn add_user<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let (role, site) = role_and_site(lang, &form)?;
    let name = form.get("name").to_owned();
    let user = new_user(lang, name, role, site, form.get("password").to_owned()).await?;
    users::add(&app.store, &viewer.actor(), &user, app.clock.now())
        .await
        .map_err(PageError::manage(lang))?;
    tracing::info!(
        user = user.name,
        role = user.role.as_str(),
        by = viewer.user.name,
        "user added from the web pages"
    );
    Ok(see_other("/admin/users?done=saved"))
}

/// `POST /admin/users/{name}`: a new role or site, and a new password if one is given.
pub async fn update_user<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let (role, site) = role_and_site(lang, &form)?;
    let stored = users::get(&app.store, &viewer.actor(), &name)
        .await
        .map_err(PageError::manage(lang))?
        .ok_or_else(|| PageError::new(lang, PageErrorKind::NotFound))?;
    let password = form.get("password").to_owned();
    let user = if password.is_empty() {
        if (role == Role::Staff) != site.is_some() {
            return Err(PageError::invalid(
                lang,
                crate::users::UserError::Site.to_string(),
            ));
        }
        User {
            role,
            site,
            ..stored
        }
    } else {
        new_user(lang, stored.name, role, site, password).await?
    };
    users::update(&app.store, &viewer.actor(), &user)
        .await
        .map_err(PageError::manage(lang))?;
    tracing::info!(
        user = user.name,
        role = user.role.as_str(),
        by = viewer.user.name,
        "user changed from the web pages"
    );
    Ok(see_other("/admin/users?done=saved"))
}

/// `GET /admin/sites/{site}`: tariffs and services of a site, and forms to set them.
pub async fn site<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(site): Path<String>,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let site = SiteId::parse(&site).map_err(PageError::not_found(lang))?;
    let (tariffs, services) = sites::setup(&app.store, &viewer.actor(), &site)
        .await
        .map_err(PageError::manage(lang))?;
    let content = html! {
        (query.notice(lang, DONE_NOTICES))
        (tariffs_table(lang, &tariffs))
        (tariff_form(&viewer, &site))
        (services_table(lang, &services))
        (service_form(&viewer, &site))
    };
    let title = format!("{} {site}", Msg::Site.text(lang));
    Ok(page(&viewer, &title, "/admin", content))
}

fn tariffs_table(lang: Lang, tariffs: &[Tariff]) -> Markup {
    html! {
        h2 { (Msg::Tariffs.text(lang)) }
        div.table { table id="tariffs" {
            thead { tr {
                th scope="col" { (Msg::Bracket.text(lang)) }
                th scope="col" { (Msg::MealType.text(lang)) }
                th.num scope="col" { (Msg::Price.text(lang)) }
            } }
            tbody { @for tariff in tariffs { tr {
                td { (tariff.bracket) } td { (tariff.meal_type) } td.num { (money(lang, tariff.price)) }
            } } }
        } }
    }
}

/// The form to set one bracket's price of one meal type.
fn tariff_form(viewer: &Viewer, site: &SiteId) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            form.inline method="post" action={ "/admin/sites/" (site) "/tariffs" } {
                (csrf(viewer))
                div { label for="bracket" { (Msg::Bracket.text(lang)) } input id="bracket" name="bracket" required size="8"; }
                div { label for="tariff-meal-type" { (Msg::MealType.text(lang)) } input id="tariff-meal-type" name="meal_type" required size="10" value="lunch"; }
                div { label for="price" { (Msg::PriceEuros.text(lang)) } input id="price" name="price" required inputmode="decimal" size="8"; }
                button type="submit" { (Msg::Save.text(lang)) }
            }
        }
    }
}

fn services_table(lang: Lang, services: &[Service]) -> Markup {
    html! {
        h2 { (Msg::Services.text(lang)) }
        div.table { table id="services" {
            thead { tr {
                th scope="col" { (Msg::Service.text(lang)) }
                th scope="col" { (Msg::Name.text(lang)) }
                th scope="col" { (Msg::MealType.text(lang)) }
                th scope="col" { (Msg::Weekdays.text(lang)) }
                th scope="col" { (Msg::Hours.text(lang)) }
            } }
            tbody { @for service in services { tr {
                td { (service.id) } td { (service.name) } td { (service.meal_type) }
                td { (service.weekdays.iter().map(|day| weekday_name(lang, *day)).collect::<Vec<_>>().join(", ")) }
                td { (serde_json::to_string(&service.start).unwrap_or_default().trim_matches('"')) "–"
                     (serde_json::to_string(&service.end).unwrap_or_default().trim_matches('"')) }
            } } }
        } }
    }
}

/// The form to set a meal service, filled in as a usual school lunch.
fn service_form(viewer: &Viewer, site: &SiteId) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            form method="post" action={ "/admin/sites/" (site) "/services" } {
                (csrf(viewer))
                div.grid {
                    div { label for="service-id" { (Msg::Service.text(lang)) } input id="service-id" name="id" required value="lunch"; }
                    div { label for="service-name" { (Msg::Name.text(lang)) } input id="service-name" name="name" required; }
                    div { label for="service-meal-type" { (Msg::MealType.text(lang)) } input id="service-meal-type" name="meal_type" required value="lunch"; }
                    div { label for="start" { (Msg::Start.text(lang)) } input id="start" name="start" type="time" required value="11:30"; }
                    div { label for="end" { (Msg::End.text(lang)) } input id="end" name="end" type="time" required value="13:45"; }
                }
                fieldset {
                    legend { (Msg::Weekdays.text(lang)) }
                    @for (day, code) in WEEKDAYS {
                        label style="display:inline-block;font-weight:400;margin-right:1rem" {
                            input type="checkbox" name="weekday" value=(code)
                                checked[!matches!(day, Weekday::Saturday | Weekday::Sunday | Weekday::Wednesday)];
                            " " (weekday_name(lang, day))
                        }
                    }
                }
                p { button type="submit" { (Msg::Save.text(lang)) } }
            }
        }
    }
}

fn weekday_name(lang: Lang, day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => Msg::Monday,
        Weekday::Tuesday => Msg::Tuesday,
        Weekday::Wednesday => Msg::Wednesday,
        Weekday::Thursday => Msg::Thursday,
        Weekday::Friday => Msg::Friday,
        Weekday::Saturday => Msg::Saturday,
        Weekday::Sunday => Msg::Sunday,
    }
    .text(lang)
}

/// `POST /admin/sites/{site}/tariffs`.
pub async fn save_tariff<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(site): Path<String>,
    body: Bytes,
) -> PageResult {
    save_setting(app, headers, site, body, tariff_of_form).await
}

/// `POST /admin/sites/{site}/services`.
pub async fn save_service<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(site): Path<String>,
    body: Bytes,
) -> PageResult {
    save_setting(app, headers, site, body, service_of_form).await
}

/// What a site's forms set: a tariff or a meal service.
enum Setting {
    Tariff(Tariff),
    Service(Service),
}

/// Saves the setting `of_form` reads from the posted form, and goes back to the site's page.
async fn save_setting<S: Store>(
    app: SharedApp<S>,
    headers: HeaderMap,
    site: String,
    body: Bytes,
    of_form: fn(Lang, &Form) -> Result<Setting, PageError>,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let site = SiteId::parse(&site).map_err(PageError::not_found(lang))?;
    let actor = viewer.actor();
    match of_form(lang, &form)? {
        Setting::Tariff(tariff) => sites::save_tariff(&app.store, &actor, &site, &tariff).await,
        Setting::Service(service) => sites::save_service(&app.store, &actor, &site, &service).await,
    }
    .map_err(PageError::manage(lang))?;
    Ok(see_other(&format!("/admin/sites/{site}?done=saved")))
}

/// One bracket's price of one meal type.
fn tariff_of_form(lang: Lang, form: &Form) -> Result<Setting, PageError> {
    Ok(Setting::Tariff(Tariff {
        bracket: BracketId::parse(form.get("bracket"))
            .map_err(|error| PageError::field(lang, Msg::Bracket, error))?,
        meal_type: MealType::parse(form.get("meal_type"))
            .map_err(|error| PageError::field(lang, Msg::MealType, error))?,
        price: layout::parse_euros(form.get("price"))
            .ok_or_else(|| PageError::field(lang, Msg::PriceEuros, form.get("price")))?,
    }))
}

/// A meal service: its name, meal type, weekdays and hours.
fn service_of_form(lang: Lang, form: &Form) -> Result<Setting, PageError> {
    let weekdays = form
        .all("weekday")
        .into_iter()
        .map(|code| {
            WEEKDAYS
                .iter()
                .find(|(_, name)| *name == code)
                .map(|(day, _)| *day)
                .ok_or_else(|| PageError::field(lang, Msg::Weekdays, code))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Setting::Service(Service {
        id: ServiceId::parse(form.get("id"))
            .map_err(|error| PageError::field(lang, Msg::Service, error))?,
        name: Text::parse(form.get("name"))
            .map_err(|error| PageError::field(lang, Msg::Name, error))?,
        meal_type: MealType::parse(form.get("meal_type"))
            .map_err(|error| PageError::field(lang, Msg::MealType, error))?,
        weekdays,
        start: LocalTime::parse(form.get("start"))
            .ok_or_else(|| PageError::field(lang, Msg::Start, form.get("start")))?,
        end: LocalTime::parse(form.get("end"))
            .ok_or_else(|| PageError::field(lang, Msg::End, form.get("end")))?,
    }))
}

/// `GET /admin/import`.
pub async fn import_page<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    Ok(import_step(&viewer, import_form(&viewer, "")))
}

/// A step of the import: its content in the import page.
fn import_step(viewer: &Viewer, content: Markup) -> Response {
    nav_page(viewer, Msg::NavImport, "/admin/import", content)
}

fn import_form(viewer: &Viewer, csv: &str) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            p { (Msg::ImportColumns.text(lang)) " " code { (import::HEADER.join(",")) } }
            form method="post" action="/admin/import" {
                (csrf(viewer))
                label for="csv-file" { (Msg::CsvFile.text(lang)) }
                // Reading the file into the text area keeps the form a plain urlencoded post.
                input id="csv-file" type="file" accept=".csv,text/csv"
                    onchange=(super::headers::CSV_FILE_HANDLER);
                label for="csv" { (Msg::CsvText.text(lang)) }
                textarea id="csv" name="csv" rows="10" required { (csv) }
                p { button type="submit" { (Msg::Check.text(lang)) } }
            }
        }
    }
}

/// `POST /admin/import`: checks every row and shows every error; a valid file is previewed
/// and written only when confirmed.
pub async fn import<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, ROLES, &body).await?;
    let lang = viewer.lang;
    let csv = form.get("csv");
    let rows = match import::parse(csv) {
        Ok(rows) => rows,
        Err(errors) => return Ok(import_step(&viewer, import_errors(&viewer, &errors, csv))),
    };
    if form.get("confirm") != "yes" {
        return Ok(import_step(&viewer, import_preview(&viewer, &rows, csv)));
    }
    import::apply(&app.store, &viewer.actor(), &rows, app.clock.now(), |_| {})
        .await
        .map_err(|error| import_refused(lang, error))?;
    tracing::info!(
        rows = rows.len(),
        user = viewer.user.name,
        "import from the web pages"
    );
    let content = html! {
        p.notice role="status" id="import-done" { (rows.len()) " " (Msg::ImportDone.text(lang)) }
        p { a href="/admin/import" { (Msg::NavImport.text(lang)) } }
    };
    Ok(import_step(&viewer, content))
}

/// Every error of the file by line, above the form holding the file to correct.
fn import_errors(viewer: &Viewer, errors: &[LineError], csv: &str) -> Markup {
    let lang = viewer.lang;
    html! {
        p.error role="alert" id="import-errors" { (errors.len()) " " (Msg::ImportErrors.text(lang)) }
        div.table { table {
            thead { tr { th scope="col" { (Msg::Line.text(lang)) } th scope="col" { (Msg::Error.text(lang)) } } }
            tbody { @for error in errors { tr { td.num { (error.line) } td { (error.message) } } } }
        } }
        (import_form(viewer, csv))
    }
}

/// What a valid file would write, its first [`IMPORT_PREVIEW_ROWS`] rows, and the form that
/// posts it again to be written.
fn import_preview(viewer: &Viewer, rows: &[ImportRow], csv: &str) -> Markup {
    let lang = viewer.lang;
    let accounts: std::collections::BTreeSet<_> =
        rows.iter().map(|row| &row.pupil.account).collect();
    let cards = rows.iter().filter(|row| row.card.is_some()).count();
    html! {
        p.notice role="status" id="import-preview" {
            (rows.len()) " " (Msg::Pupils.text(lang)) ", " (accounts.len()) " " (Msg::Accounts.text(lang)) ", "
            (cards) " " (Msg::Cards.text(lang)) ". " (Msg::ImportNothingWritten.text(lang))
        }
        div.table { table {
            thead { tr {
                th scope="col" { (Msg::Site.text(lang)) } th scope="col" { (Msg::Account.text(lang)) }
                th scope="col" { (Msg::PupilId.text(lang)) } th scope="col" { (Msg::Pupil.text(lang)) }
                th scope="col" { (Msg::Bracket.text(lang)) } th scope="col" { (Msg::Card.text(lang)) }
            } }
            tbody { @for row in rows.iter().take(IMPORT_PREVIEW_ROWS) { tr {
                td { (row.site) } td { (row.pupil.account) } td { (row.pupil.id) }
                td { (row.pupil.last_name) " " (row.pupil.first_name) } td { (row.pupil.bracket) }
                td { @if let Some(card) = row.card { code { (card) } } }
            } } }
        } }
        @if rows.len() > IMPORT_PREVIEW_ROWS { p { "… " (rows.len() - IMPORT_PREVIEW_ROWS) } }
        form method="post" action="/admin/import" {
            (csrf(viewer))
            input type="hidden" name="csv" value=(csv);
            input type="hidden" name="confirm" value="yes";
            button type="submit" id="import-confirm" { (Msg::ImportConfirm.text(lang)) } " "
            a.button href="/admin/import" { (Msg::Cancel.text(lang)) }
        }
    }
}

/// An import the use case refused, as a page; its invalid lines, if any, in one message.
fn import_refused(lang: Lang, error: ImportError) -> PageError {
    match error {
        ImportError::Refused(error) => PageError::manage(lang)(error),
        ImportError::Invalid(errors) => PageError::invalid(
            lang,
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{Setting, service_of_form, tariff_of_form};
    use crate::web::PageErrorKind;
    use crate::web::i18n::Lang;
    use crate::web::session::Form;

    /// What a site's form gives: the setting as text, or the refusal's message.
    fn setting_of(
        of_form: fn(Lang, &Form) -> Result<Setting, super::PageError>,
        body: &str,
    ) -> String {
        match of_form(Lang::En, &Form::parse(body.as_bytes())) {
            Ok(Setting::Tariff(tariff)) => {
                format!(
                    "{} {} {}",
                    tariff.bracket,
                    tariff.meal_type,
                    tariff.price.get()
                )
            }
            Ok(Setting::Service(service)) => format!(
                "{} {} {} {:?}",
                service.id, service.name, service.meal_type, service.weekdays
            ),
            Err(error) => match error.kind {
                PageErrorKind::Invalid(message) => message,
                other => format!("{other:?}"),
            },
        }
    }

    fn check_tariff(body: &str, expected: &str) {
        assert_eq!(setting_of(tariff_of_form, body), expected, "{body}");
    }

    fn check_service(body: &str, expected: &str) {
        assert_eq!(setting_of(service_of_form, body), expected, "{body}");
    }

    #[test]
    fn tariff_forms() {
        check_tariff("bracket=B2&meal_type=lunch&price=3,85", "B2 lunch 385");
        check_tariff("bracket=B2&meal_type=lunch&price=3.8.5", "Price (€): 3.8.5");
        check_tariff(
            "bracket=&meal_type=lunch&price=1",
            "bracket: tariff bracket: empty",
        );
    }

    #[test]
    fn service_forms() {
        let lunch = "id=lunch&name=Lunch&meal_type=lunch&start=11:30&end=13:45";
        check_service(
            &format!("{lunch}&weekday=monday&weekday=friday"),
            "lunch Lunch lunch [Monday, Friday]",
        );
        check_service(&format!("{lunch}&weekday=someday"), "Weekdays: someday");
        check_service(
            "id=lunch&name=Lunch&meal_type=lunch&start=25:00&end=13:45",
            "Start: 25:00",
        );
    }
}
