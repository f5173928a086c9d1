//! The finance office's pages: meals and revenue per service day and site (charts and tables,
//! from the per-day totals ingest keeps), and the kiosk fleet as each kiosk last reported.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use maud::{Markup, html};
use proto::api::ReaderState;
use proto::{Cents, DeviceId, ServiceDate, SiteId, Timestamp};
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::layout::{self, money, nav_page};
use super::session::{Viewer, viewer};
use super::{PageError, PageResult, chart, service_today};
use crate::limits::{DASHBOARD_DAYS, KIOSK_SILENT_MS};
use crate::state::SharedApp;
use crate::store::{Device, KioskStatus, Store};
use crate::users::Role;

const ROLES: &[Role] = crate::manage::FINANCE;

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    site: String,
}

/// `GET /finance?site=`: the last [`DASHBOARD_DAYS`] service days, all sites or one.
pub async fn dashboard<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<DashboardQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let dashboard = load_dashboard(&app, &viewer, &query).await?;
    let content = dashboard_content(lang, &dashboard);
    Ok(nav_page(&viewer, Msg::NavDashboard, "/finance", content))
}

/// Meals and revenue in cents.
type Totals = (i64, i64);

/// What the dashboard shows.
struct Dashboard {
    first: ServiceDate,
    today: ServiceDate,
    /// The site shown, or none for all of them.
    chosen: Option<SiteId>,
    /// Every day of the period, with the chosen site's totals (all sites' if none is).
    days: BTreeMap<ServiceDate, Totals>,
    /// Every site that served meals in the period, whichever is chosen: the choices.
    sites: BTreeMap<SiteId, Totals>,
}

/// The period ending today and its per-day totals, summed per day and per site.
async fn load_dashboard<S: Store>(
    app: &SharedApp<S>,
    viewer: &Viewer,
    query: &DashboardQuery,
) -> Result<Dashboard, PageError> {
    let lang = viewer.lang;
    let chosen = SiteId::parse(&query.site).ok();
    let today = service_today(app, lang)?;
    let first = layout::days_before(today, DASHBOARD_DAYS - 1)
        .ok_or_else(|| PageError::invalid(lang, "clock"))?;
    let rows = crate::meal_days::days(&app.store, &viewer.actor(), first, today)
        .await
        .map_err(PageError::manage(lang))?;
    let mut days: BTreeMap<ServiceDate, Totals> = BTreeMap::new();
    for back in (0..DASHBOARD_DAYS).rev() {
        if let Some(day) = layout::days_before(today, back) {
            days.insert(day, (0, 0));
        }
    }
    let mut sites: BTreeMap<SiteId, Totals> = BTreeMap::new();
    for row in &rows {
        let site = sites.entry(row.site.clone()).or_default();
        site.0 += row.meals;
        site.1 += row.revenue.get();
        if chosen.as_ref().is_none_or(|chosen| *chosen == row.site) {
            let day = days.entry(row.date).or_default();
            day.0 += row.meals;
            day.1 += row.revenue.get();
        }
    }
    Ok(Dashboard {
        first,
        today,
        chosen,
        days,
        sites,
    })
}

/// The dashboard: the site to show, the period, the charts and the tables.
fn dashboard_content(lang: Lang, dashboard: &Dashboard) -> Markup {
    let scope = dashboard
        .chosen
        .as_ref()
        .map_or_else(|| Msg::AllSites.text(lang).to_owned(), ToString::to_string);
    html! {
        (site_choice(lang, dashboard))
        p { (Msg::Period.text(lang)) ": " (dashboard.first.to_string()) " – " (dashboard.today.to_string()) " · " (scope) }
        (day_charts(lang, &dashboard.days, &scope))
        (per_site_table(lang, &dashboard.sites))
        (per_day_table(lang, &dashboard.days))
    }
}

/// The form to show one site, or all.
fn site_choice(lang: Lang, dashboard: &Dashboard) -> Markup {
    html! {
        section.card.no-print {
            form.inline method="get" action="/finance" {
                div {
                    label for="site" { (Msg::Site.text(lang)) }
                    select id="site" name="site" {
                        option value="" { (Msg::AllSites.text(lang)) }
                        @for site in dashboard.sites.keys() {
                            option value=(site) selected[Some(site) == dashboard.chosen.as_ref()] { (site) }
                        }
                    }
                }
                button type="submit" { (Msg::Show.text(lang)) }
            }
        }
    }
}

/// Meals and revenue per day as bar charts; `scope` names the sites counted.
fn day_charts(lang: Lang, days: &BTreeMap<ServiceDate, Totals>, scope: &str) -> Markup {
    let meals: Vec<(String, i64)> = days
        .iter()
        .map(|(day, (meals, _))| (short_day(*day), *meals))
        .collect();
    let revenue: Vec<(String, i64)> = days
        .iter()
        .map(|(day, (_, cents))| (short_day(*day), *cents))
        .collect();
    html! {
        div.grid {
            section.card {
                h2 { (Msg::MealsPerDay.text(lang)) }
                (chart::bars(&format!("{} · {scope}", Msg::MealsPerDay.text(lang)), &meals, |value| value.to_string()))
            }
            section.card {
                h2 { (Msg::RevenuePerDay.text(lang)) }
                (chart::bars(&format!("{} · {scope}", Msg::RevenuePerDay.text(lang)), &revenue, |cents| money(lang, Cents::new(cents))))
            }
        }
    }
}

/// Each site's totals over the period, each linking to that site's dashboard.
fn per_site_table(lang: Lang, sites: &BTreeMap<SiteId, Totals>) -> Markup {
    let rows = sites.iter().map(|(site, totals)| {
        (
            html! { a href={ "/finance?site=" (site) } { (site) } },
            totals,
        )
    });
    totals_table(lang, Msg::PerSite, "per-site", Msg::Site, rows)
}

/// Each day's totals, latest first.
fn per_day_table(lang: Lang, days: &BTreeMap<ServiceDate, Totals>) -> Markup {
    let rows = days
        .iter()
        .rev()
        .map(|(day, totals)| (html! { (day.to_string()) }, totals));
    totals_table(lang, Msg::PerDay, "per-day", Msg::Day, rows)
}

/// A table of meals and revenue, a row for each key (a site, a day), under `title`.
fn totals_table<'a>(
    lang: Lang,
    title: Msg,
    id: &str,
    key_heading: Msg,
    rows: impl Iterator<Item = (Markup, &'a Totals)>,
) -> Markup {
    html! {
        h2 { (title.text(lang)) }
        div.table { table id=(id) {
            thead { tr {
                th scope="col" { (key_heading.text(lang)) }
                th.num scope="col" { (Msg::Meals.text(lang)) }
                th.num scope="col" { (Msg::Revenue.text(lang)) }
            } }
            tbody {
                @for (key, (meals, cents)) in rows {
                    tr {
                        th scope="row" { (key) }
                        td.num { (meals) }
                        td.num { (money(lang, Cents::new(*cents))) }
                    }
                }
            }
        } }
    }
}

/// `11-30` for a chart's axis.
fn short_day(day: ServiceDate) -> String {
    day.to_string().get(5..).unwrap_or_default().to_owned()
}

/// `GET /finance/kiosks`: every enrolled kiosk, its last report, and those silent too long.
pub async fn kiosks<S: Store>(State(app): State<SharedApp<S>>, headers: HeaderMap) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let fleet = load_fleet(&app, &viewer).await?;
    let content = fleet_content(lang, &fleet);
    Ok(nav_page(&viewer, Msg::NavFleet, "/finance/kiosks", content))
}

/// Every enrolled kiosk, the last report of those that reported, and when they are judged.
struct Fleet {
    devices: Vec<Device>,
    statuses: BTreeMap<DeviceId, KioskStatus>,
    now: Timestamp,
}

impl Fleet {
    /// Enrolled, and not heard from for [`KIOSK_SILENT_MS`] or ever.
    fn is_silent(&self, device: &Device) -> bool {
        device.revoked_at.is_none()
            && self.statuses.get(&device.id).is_none_or(|status| {
                self.now.unix_ms() - status.last_seen.unix_ms() > KIOSK_SILENT_MS
            })
    }
}

/// The kiosks as each last reported, to be judged against the clock now.
async fn load_fleet<S: Store>(app: &SharedApp<S>, viewer: &Viewer) -> Result<Fleet, PageError> {
    let fleet = crate::kiosks::fleet_view(&app.store, &viewer.actor())
        .await
        .map_err(PageError::manage(viewer.lang))?;
    let devices: Vec<Device> = fleet
        .iter()
        .map(|(entry, _)| entry.device.clone())
        .collect();
    let statuses: BTreeMap<_, _> = fleet
        .into_iter()
        .filter_map(|(entry, status)| Some((entry.device.id, status?)))
        .collect();
    Ok(Fleet {
        devices,
        statuses,
        now: app.clock.now(),
    })
}

/// How many kiosks are silent, and the table of all of them.
fn fleet_content(lang: Lang, fleet: &Fleet) -> Markup {
    let silent_count = fleet
        .devices
        .iter()
        .filter(|device| fleet.is_silent(device))
        .count();
    html! {
        p role="status" {
            strong id="silent-count" { (silent_count) } " " (Msg::KiosksSilent.text(lang))
            " (" (KIOSK_SILENT_MS / 60_000) " min)"
        }
        div.table { table id="fleet" {
            thead { tr {
                th scope="col" { (Msg::Kiosk.text(lang)) }
                th scope="col" { (Msg::Site.text(lang)) }
                th scope="col" { (Msg::State.text(lang)) }
                th scope="col" { (Msg::LastSeen.text(lang)) }
                th scope="col" { (Msg::Version.text(lang)) }
                th.num scope="col" { (Msg::Unsynced.text(lang)) }
                th scope="col" { (Msg::Reader.text(lang)) }
                th.num scope="col" { (Msg::ClockDrift.text(lang)) }
            } }
            tbody {
                @for device in &fleet.devices {
                    (fleet_row(lang, device, fleet.statuses.get(&device.id), fleet.is_silent(device)))
                }
            }
        } }
    }
}

/// One kiosk: its state and, if it ever reported, what it last said; a silent one is marked.
fn fleet_row(lang: Lang, device: &Device, status: Option<&KioskStatus>, is_silent: bool) -> Markup {
    html! {
        tr.alert[is_silent] {
            th scope="row" { (device.id) }
            td { (device.site) }
            td {
                @if device.revoked_at.is_some() {
                    span.badge { (Msg::Revoked.text(lang)) }
                } @else if is_silent {
                    span.badge.bad { (Msg::Silent.text(lang)) }
                } @else {
                    span.badge.ok { (Msg::Online.text(lang)) }
                }
            }
            @if let Some(status) = status {
                td { (layout::local_time(status.last_seen)) }
                td { (status.report.software_version) }
                td.num { (status.report.unsynced_records) }
                td { @match status.report.reader {
                    ReaderState::Ready => { (Msg::ReaderReady.text(lang)) }
                    ReaderState::Unavailable => { span.badge.bad { (Msg::ReaderUnavailable.text(lang)) } }
                } }
                td.num { (drift_seconds(status.report.kiosk_time.unix_ms() - status.last_seen.unix_ms())) }
            } @else {
                td colspan="5" { (Msg::NeverSeen.text(lang)) }
            }
        }
    }
}

/// `+3 s`, `-120 s`: the kiosk's clock against the back-office's when it reported.
fn drift_seconds(drift_ms: i64) -> String {
    format!("{:+} s", drift_ms / 1_000)
}
