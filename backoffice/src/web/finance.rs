//! The finance office's pages: meals and revenue per service day and site (charts and tables,
//! from the per-day totals ingest keeps), and the kiosk fleet as each kiosk last reported.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use maud::html;
use proto::api::ReaderState;
use proto::{Cents, ServiceDate, SiteId};
use serde::Deserialize;

use super::i18n::Msg;
use super::layout::{self, money, page};
use super::session::viewer;
use super::{PageError, PageResult, chart};
use crate::limits::{DASHBOARD_DAYS, KIOSK_SILENT_MS};
use crate::state::SharedApp;
use crate::store::{Device, Store};
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
    let chosen = SiteId::parse(&query.site).ok();
    let today =
        layout::service_day(app.clock.now()).ok_or_else(|| PageError::invalid(lang, "clock"))?;
    let first = layout::days_before(today, DASHBOARD_DAYS - 1)
        .ok_or_else(|| PageError::invalid(lang, "clock"))?;
    let rows = crate::meal_days::days(&app.store, &viewer.actor(), first, today)
        .await
        .map_err(PageError::manage(lang))?;
    let mut days: BTreeMap<ServiceDate, (i64, i64)> = BTreeMap::new();
    for back in (0..DASHBOARD_DAYS).rev() {
        if let Some(day) = layout::days_before(today, back) {
            days.insert(day, (0, 0));
        }
    }
    let mut sites: BTreeMap<SiteId, (i64, i64)> = BTreeMap::new();
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
    let meals: Vec<(String, i64)> = days
        .iter()
        .map(|(day, (meals, _))| (short_day(*day), *meals))
        .collect();
    let revenue: Vec<(String, i64)> = days
        .iter()
        .map(|(day, (_, cents))| (short_day(*day), *cents))
        .collect();
    let scope = chosen
        .as_ref()
        .map_or_else(|| Msg::AllSites.text(lang).to_owned(), ToString::to_string);
    let content = html! {
        section.card.no-print {
            form.inline method="get" action="/finance" {
                div {
                    label for="site" { (Msg::Site.text(lang)) }
                    select id="site" name="site" {
                        option value="" { (Msg::AllSites.text(lang)) }
                        @for site in sites.keys() {
                            option value=(site) selected[Some(site) == chosen.as_ref()] { (site) }
                        }
                    }
                }
                button type="submit" { (Msg::Show.text(lang)) }
            }
        }
        p { (Msg::Period.text(lang)) ": " (first.to_string()) " – " (today.to_string()) " · " (scope) }
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
        h2 { (Msg::PerSite.text(lang)) }
        div.table { table id="per-site" {
            thead { tr {
                th scope="col" { (Msg::Site.text(lang)) }
                th.num scope="col" { (Msg::Meals.text(lang)) }
                th.num scope="col" { (Msg::Revenue.text(lang)) }
            } }
            tbody {
                @for (site, (meals, cents)) in &sites {
                    tr {
                        th scope="row" { a href={ "/finance?site=" (site) } { (site) } }
                        td.num { (meals) }
                        td.num { (money(lang, Cents::new(*cents))) }
                    }
                }
            }
        } }
        h2 { (Msg::PerDay.text(lang)) }
        div.table { table id="per-day" {
            thead { tr {
                th scope="col" { (Msg::Day.text(lang)) }
                th.num scope="col" { (Msg::Meals.text(lang)) }
                th.num scope="col" { (Msg::Revenue.text(lang)) }
            } }
            tbody {
                @for (day, (meals, cents)) in days.iter().rev() {
                    tr {
                        th scope="row" { (day.to_string()) }
                        td.num { (meals) }
                        td.num { (money(lang, Cents::new(*cents))) }
                    }
                }
            }
        } }
    };
    Ok(page(
        &viewer,
        Msg::NavDashboard.text(lang),
        "/finance",
        content,
    ))
}

/// `11-30` for a chart's axis.
fn short_day(day: ServiceDate) -> String {
    day.to_string().get(5..).unwrap_or_default().to_owned()
}

/// `GET /finance/kiosks`: every enrolled kiosk, its last report, and those silent too long.
pub async fn kiosks<S: Store>(State(app): State<SharedApp<S>>, headers: HeaderMap) -> PageResult {
    let viewer = viewer(&app, &headers, ROLES).await?;
    let lang = viewer.lang;
    let fleet = crate::kiosks::fleet_view(&app.store, &viewer.actor())
        .await
        .map_err(PageError::manage(lang))?;
    let devices: Vec<Device> = fleet
        .iter()
        .map(|(entry, _)| entry.device.clone())
        .collect();
    let statuses: BTreeMap<_, _> = fleet
        .into_iter()
        .filter_map(|(entry, status)| Some((entry.device.id, status?)))
        .collect();
    let now = app.clock.now();
    let silent = |device: &Device| {
        device.revoked_at.is_none()
            && statuses
                .get(&device.id)
                .is_none_or(|status| now.unix_ms() - status.last_seen.unix_ms() > KIOSK_SILENT_MS)
    };
    let silent_count = devices.iter().filter(|device| silent(device)).count();
    let content = html! {
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
                @for device in &devices {
                    @let status = statuses.get(&device.id);
                    @let is_silent = silent(device);
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
        } }
    };
    Ok(page(
        &viewer,
        Msg::NavFleet.text(lang),
        "/finance/kiosks",
        content,
    ))
}

/// `+3 s`, `-120 s`: the kiosk's clock against the back-office's when it reported.
fn drift_seconds(drift_ms: i64) -> String {
    format!("{:+} s", drift_ms / 1_000)
}
