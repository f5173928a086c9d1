//! The finance office's reconciliation pages: run a day's reconciliation (all sites or one),
//! read it per site and kiosk with every finding and its signed evidence, approve or reject the
//! voids it proposes, sign the day off, and download the day's exports. The rules are
//! `crate::reconcile`'s and `crate::export`'s, as for the API and the CLI.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use maud::{Markup, html};
use proto::{ServiceDate, SiteId};
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::layout::{self, csrf, money, page};
use super::session::{Viewer, signed_form, viewer};
use super::{PageError, PageErrorKind, PageResult, see_other, service_today};
use crate::export::{self, ExportError, ExportKind, Period};
use crate::reconcile::{
    self, Finding, KioskDay, RUNNERS as READERS, Report, SIGNERS as DECIDERS, SiteDay,
};
use crate::state::SharedApp;
use crate::store::{ProposedVoid, SavedReconciliation, Store, VoidStatus};

/// The exports offered for a day, with their file names' endings.
const EXPORTS: [(&str, &str); 5] = [
    ("meals", "csv"),
    ("top-ups", "csv"),
    ("summary", "csv"),
    ("journal", "txt"),
    ("records", "jsonl"),
];

#[derive(Debug, Deserialize)]
pub struct DayQuery {
    #[serde(default)]
    date: String,
    #[serde(default)]
    site: String,
}

fn day_path(date: ServiceDate, site: Option<&SiteId>) -> String {
    match site {
        Some(site) => format!("/finance/reconciliations?date={date}&site={site}"),
        None => format!("/finance/reconciliations?date={date}"),
    }
}

fn day_of(
    lang: Lang,
    date: &str,
    site: &str,
) -> Result<(Option<ServiceDate>, Option<SiteId>), PageError> {
    let date = match date {
        "" => None,
        text => Some(
            ServiceDate::parse(text)
                .map_err(|_| PageError::invalid(lang, Msg::DayInvalid.text(lang)))?,
        ),
    };
    let site = match site {
        "" => None,
        text => {
            Some(SiteId::parse(text).map_err(|error| PageError::invalid(lang, error.to_string()))?)
        }
    };
    Ok((date, site))
}

/// `GET /finance/reconciliations?date=D&site=S`: the stored reconciliation of a day, if any,
/// and the form to run it.
pub async fn day<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<DayQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, READERS).await?;
    let day = load_day(&app, &viewer, &query).await?;
    let title = format!("{} {}", Msg::NavReconciliation.text(viewer.lang), day.date);
    let content = day_content(&viewer, &day);
    Ok(page(&viewer, &title, "/finance/reconciliations", content))
}

/// What a day's page shows.
struct DayView {
    date: ServiceDate,
    /// The one site reconciled, or none for all of them.
    site: Option<SiteId>,
    /// The stored reconciliation and its report; none until the day is run.
    reconciliation: Option<(SavedReconciliation, Report)>,
    /// The voids proposed for the day, whatever their state.
    proposals: Vec<ProposedVoid>,
}

impl DayView {
    /// The site as a form field holds it: empty for all sites.
    fn site_text(&self) -> &str {
        self.site.as_ref().map(SiteId::as_str).unwrap_or_default()
    }
}

/// The asked day (yesterday by default), its stored reconciliation and proposed voids.
async fn load_day<S: Store>(
    app: &SharedApp<S>,
    viewer: &Viewer,
    query: &DayQuery,
) -> Result<DayView, PageError> {
    let lang = viewer.lang;
    let (date, site) = day_of(lang, &query.date, &query.site)?;
    let today = service_today(app, lang)?;
    let date = date.unwrap_or_else(|| layout::days_before(today, 1).unwrap_or(today));
    let actor = viewer.actor();
    let saved = reconcile::saved(&app.store, &actor, date, site.as_ref())
        .await
        .map_err(PageError::reconcile(lang))?;
    let reconciliation = match saved {
        Some(saved) => {
            let report = reconcile::parse_report(&saved).map_err(PageError::reconcile(lang))?;
            Some((saved, report))
        }
        None => None,
    };
    let proposals = reconcile::proposed_voids(&app.store, &actor, Some(date))
        .await
        .map_err(PageError::reconcile(lang))?;
    Ok(DayView {
        date,
        site,
        reconciliation,
        proposals,
    })
}

/// The day's page: the controls, the reconciliation once run, the proposed voids and the
/// exports.
fn day_content(viewer: &Viewer, day: &DayView) -> Markup {
    let lang = viewer.lang;
    let decides = DECIDERS.contains(&viewer.user.role);
    html! {
        (day_controls(viewer, day))
        @match &day.reconciliation {
            Some((saved, report)) => {
                (reconciliation_summary(viewer, day, saved, report, decides))
                (site_table(lang, &report.sites))
                (kiosk_table(lang, &report.kiosks))
                (findings_list(lang, &report.findings))
            }
            None => { p.notice role="status" { (Msg::NotReconciled.text(lang)) } }
        }
        (proposed_voids_table(viewer, day, decides))
        (exports_list(lang, day))
    }
}

/// The forms to show another day or site, and to run the shown one.
fn day_controls(viewer: &Viewer, day: &DayView) -> Markup {
    let lang = viewer.lang;
    let (date, site_text) = (day.date, day.site_text());
    html! {
        section.card.no-print {
            form.inline method="get" action="/finance/reconciliations" {
                div { label for="date" { (Msg::Day.text(lang)) } input id="date" name="date" type="date" value=(date.to_string()); }
                div { label for="site" { (Msg::SiteOptional.text(lang)) } input id="site" name="site" value=(site_text) size="12"; }
                button type="submit" { (Msg::Show.text(lang)) }
            }
            form.inline method="post" action="/finance/reconciliations" {
                (csrf(viewer))
                input type="hidden" name="date" value=(date.to_string());
                input type="hidden" name="site" value=(site_text);
                button type="submit" id="run" { (Msg::RunReconciliation.text(lang)) }
            }
        }
    }
}

/// Who ran the reconciliation and when, whether it is signed off, its totals, and the
/// sign-off form while finance may still sign.
fn reconciliation_summary(
    viewer: &Viewer,
    day: &DayView,
    saved: &SavedReconciliation,
    report: &Report,
    decides: bool,
) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            p id="reconciliation-state" {
                (Msg::RunBy.text(lang)) " " (saved.run_by) ", " (layout::local_time(saved.run_at)) ". "
                @if let Some(by) = &saved.signed_off_by {
                    span.badge.ok { (Msg::SignedOff.text(lang)) } " " (by)
                    @if let Some(at) = saved.signed_off_at { ", " (layout::local_time(at)) }
                } @else {
                    span.badge.bad { (Msg::NotSignedOff.text(lang)) }
                }
            }
            p { (Msg::RecordsChecked.text(lang)) ": " (report.records_checked) " · "
                (Msg::Revenue.text(lang)) ": " (money(lang, report.revenue)) " · "
                @if report.is_clean() { span.badge.ok { (Msg::Clean.text(lang)) } }
                @else { span.badge.bad { (Msg::NeedsAttention.text(lang)) } } }
            @if decides && saved.signed_off_by.is_none() {
                form.inline method="post" action={ "/finance/reconciliations/" (day.date) "/sign-off" } {
                    (csrf(viewer))
                    input type="hidden" name="site" value=(day.site_text());
                    button type="submit" id="sign-off" { (Msg::SignOff.text(lang)) }
                }
            }
        }
    }
}

/// Meals, revenue and cash per site; a row whose cash differs is marked.
fn site_table(lang: Lang, sites: &[SiteDay]) -> Markup {
    html! {
        h2 { (Msg::PerSite.text(lang)) }
        div.table { table id="recon-sites" {
            thead { tr {
                th scope="col" { (Msg::Site.text(lang)) }
                th.num scope="col" { (Msg::Meals.text(lang)) }
                th.num scope="col" { (Msg::Revenue.text(lang)) }
                th.num scope="col" { (Msg::CashExpected.text(lang)) }
                th.num scope="col" { (Msg::CashCounted.text(lang)) }
                th.num scope="col" { (Msg::CashDifference.text(lang)) }
            } }
            tbody { @for day in sites { tr.alert[day.cash_difference.get() != 0] {
                th scope="row" { (day.site.as_ref().map(SiteId::as_str).unwrap_or("—")) }
                td.num { (day.meals) }
                td.num { (money(lang, day.revenue)) }
                td.num { (money(lang, day.cash_expected)) }
                td.num { (money(lang, day.cash_counted)) }
                td.num { (money(lang, day.cash_difference)) }
            } } }
        } }
    }
}

/// Each kiosk's records, day close and chain; a row whose chain is broken is marked.
fn kiosk_table(lang: Lang, kiosks: &[KioskDay]) -> Markup {
    html! {
        h2 { (Msg::PerKiosk.text(lang)) }
        div.table { table id="recon-kiosks" {
            thead { tr {
                th scope="col" { (Msg::Kiosk.text(lang)) }
                th scope="col" { (Msg::Site.text(lang)) }
                th.num scope="col" { (Msg::Records.text(lang)) }
                th scope="col" { (Msg::DayClose.text(lang)) }
                th.num scope="col" { (Msg::Meals.text(lang)) }
                th.num scope="col" { (Msg::Revenue.text(lang)) }
                th scope="col" { (Msg::Chain.text(lang)) }
            } }
            tbody { @for kiosk in kiosks { tr.alert[!kiosk.chain_clean] {
                th scope="row" { (kiosk.device) }
                td { (kiosk.site) }
                td.num { (kiosk.records) }
                td { @match (kiosk.day_close, kiosk.close_matches) {
                    (Some(seq), Some(true)) => { "#" (seq) " " span.badge.ok { "✓" } }
                    (Some(seq), _) => { "#" (seq) " " span.badge.bad { "≠" } }
                    (None, _) => { span.badge.bad { (Msg::Missing.text(lang)) } }
                } }
                td.num { (kiosk.meals) }
                td.num { (money(lang, kiosk.revenue)) }
                td { @if kiosk.chain_clean { span.badge.ok { (Msg::Clean.text(lang)) } }
                     @else { span.badge.bad { (Msg::NeedsAttention.text(lang)) } } }
            } } }
        } }
    }
}

/// Every finding with what to do about it, and the signed records it rests on.
fn findings_list(lang: Lang, findings: &[Finding]) -> Markup {
    html! {
        h2 { (Msg::Findings.text(lang)) " (" (findings.len()) ")" }
        @if findings.is_empty() { p { (Msg::NoFindings.text(lang)) } }
        ol id="findings" {
            @for finding in findings {
                li.card {
                    strong { @if finding.kind.is_defect() { span.badge.bad { (Msg::Defect.text(lang)) } " " }
                        (serde_json::to_string(&finding.kind).unwrap_or_default().trim_matches('"')) }
                    @if let Some(device) = &finding.device { " · " (device) }
                    @if let Some(seq) = finding.seq { " #" (seq) }
                    p { (finding.detail) }
                    p { em { (finding.action) } }
                    @if !finding.evidence.is_empty() {
                        details {
                            summary { (Msg::Evidence.text(lang)) " (" (finding.evidence.len()) ")" }
                            @for record in &finding.evidence {
                                pre style="white-space:pre-wrap;word-break:break-all" { (record.payload) "\n" (Msg::Signature.text(lang)) ": " (record.signature) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The day's proposed voids, each with its state or, while pending, the forms to decide it.
fn proposed_voids_table(viewer: &Viewer, day: &DayView, decides: bool) -> Markup {
    let lang = viewer.lang;
    html! {
        h2 { (Msg::ProposedVoids.text(lang)) }
        @if day.proposals.is_empty() { p { (Msg::NoProposedVoids.text(lang)) } }
        @else {
            div.table { table id="proposed-voids" {
                thead { tr {
                    th scope="col" { (Msg::Kiosk.text(lang)) }
                    th scope="col" { (Msg::PupilId.text(lang)) }
                    th scope="col" { (Msg::Account.text(lang)) }
                    th.num scope="col" { (Msg::Amount.text(lang)) }
                    th scope="col" { (Msg::Kept.text(lang)) }
                    th scope="col" { (Msg::State.text(lang)) }
                } }
                tbody { @for proposal in &day.proposals { tr {
                    td { (proposal.device) " #" (proposal.seq) }
                    td { (proposal.pupil) }
                    td { (proposal.account) }
                    td.num { (money(lang, proposal.amount)) }
                    td { (proposal.kept_device) " #" (proposal.kept_seq) }
                    td { (proposal_state(viewer, day, proposal, decides)) }
                } } }
            } }
        }
    }
}

/// A proposed void's state; the approve and reject forms while it waits for finance.
fn proposal_state(
    viewer: &Viewer,
    day: &DayView,
    proposal: &ProposedVoid,
    decides: bool,
) -> Markup {
    let lang = viewer.lang;
    let site = day.site.as_ref();
    html! {
        @match proposal.status {
            VoidStatus::Pending => {
                @if decides {
                    (decision_form(viewer, proposal.id, day.date, site, true))
                    (decision_form(viewer, proposal.id, day.date, site, false))
                } @else { (Msg::Proposed.text(lang)) }
            }
            VoidStatus::Approved => { span.badge.ok { (Msg::Approved.text(lang)) } " " (proposal.decided_by.as_deref().unwrap_or_default()) }
            VoidStatus::Rejected => { span.badge { (Msg::Rejected.text(lang)) } " " (proposal.decided_by.as_deref().unwrap_or_default()) }
        }
    }
}

/// A link to each of the day's exports, for the shown site or all.
fn exports_list(lang: Lang, day: &DayView) -> Markup {
    html! {
        h2 { (Msg::Exports.text(lang)) }
        ul id="exports" {
            @for (kind, _) in EXPORTS {
                li { a href={ "/finance/exports/" (kind) "?from=" (day.date)
                        @if let Some(site) = &day.site { "&site=" (site) } } download { (kind) } }
            }
        }
    }
}

fn decision_form(
    viewer: &Viewer,
    id: i64,
    date: ServiceDate,
    site: Option<&SiteId>,
    approve: bool,
) -> Markup {
    let lang = viewer.lang;
    let (verb, label, class) = if approve {
        ("approve", Msg::Approve, "")
    } else {
        ("reject", Msg::Reject, "secondary")
    };
    html! {
        form.inline method="post" action={ "/finance/proposed-voids/" (id) "/" (verb) } {
            (csrf(viewer))
            input type="hidden" name="date" value=(date.to_string());
            input type="hidden" name="site" value=(site.map(SiteId::as_str).unwrap_or_default());
            button class=(class) type="submit" { (label.text(lang)) }
        }
    }
}

/// `POST /finance/reconciliations`: runs and stores a day's reconciliation.
pub async fn run<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, READERS, &body).await?;
    let lang = viewer.lang;
    let (date, site) = day_of(lang, form.get("date"), form.get("site"))?;
    let date = date.ok_or_else(|| PageError::invalid(lang, Msg::DayInvalid.text(lang)))?;
    reconcile::run_and_save(
        &app.store,
        &viewer.actor(),
        date,
        site.as_ref(),
        &app.finance,
        app.clock.now(),
        |_, _| {},
    )
    .await
    .map_err(PageError::reconcile(lang))?;
    Ok(see_other(&day_path(date, site.as_ref())))
}

/// `POST /finance/reconciliations/{date}/sign-off`: finance only; refused while voids wait.
pub async fn sign_off<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(date): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, DECIDERS, &body).await?;
    let lang = viewer.lang;
    let (date, site) = day_of(lang, &date, form.get("site"))?;
    let date = date.ok_or_else(|| PageError::new(lang, PageErrorKind::NotFound))?;
    let now = app.clock.now();
    reconcile::sign_off(&app.store, &viewer.actor(), date, site.as_ref(), now)
        .await
        .map_err(PageError::reconcile(lang))?;
    tracing::info!(%date, user = viewer.user.name, "day signed off from the web pages");
    Ok(see_other(&day_path(date, site.as_ref())))
}

/// `POST /finance/proposed-voids/{id}/approve`.
pub async fn approve<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    decide(app, headers, id, body, true).await
}

/// `POST /finance/proposed-voids/{id}/reject`.
pub async fn reject<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    decide(app, headers, id, body, false).await
}

async fn decide<S: Store>(
    app: SharedApp<S>,
    headers: HeaderMap,
    id: i64,
    body: Bytes,
    approve: bool,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, DECIDERS, &body).await?;
    let lang = viewer.lang;
    let (date, site) = day_of(lang, form.get("date"), form.get("site"))?;
    let now = app.clock.now();
    let decided = reconcile::decide(&app.store, &viewer.actor(), id, approve, &app.finance, now)
        .await
        .map_err(PageError::reconcile(lang))?;
    tracing::info!(
        id,
        approve,
        user = viewer.user.name,
        "proposed void decided from the web pages"
    );
    Ok(see_other(&day_path(
        date.unwrap_or(decided.date),
        site.as_ref(),
    )))
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    site: String,
}

/// `GET /finance/exports/{kind}?from=D&to=D&site=S`: a file to save.
pub async fn download<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(kind_name): Path<String>,
    Query(query): Query<ExportQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, READERS).await?;
    let lang = viewer.lang;
    let (_, extension) = EXPORTS
        .iter()
        .find(|(name, _)| *name == kind_name)
        .ok_or_else(|| PageError::new(lang, PageErrorKind::NotFound))?;
    let kind = ExportKind::parse(&kind_name).map_err(PageError::not_found(lang))?;
    let (from, site) = day_of(lang, &query.from, &query.site)?;
    let from = from.ok_or_else(|| PageError::invalid(lang, Msg::DayInvalid.text(lang)))?;
    let (to, _) = day_of(lang, &query.to, "")?;
    let to = to.unwrap_or(from);
    let export_error = |error: ExportError| match error {
        ExportError::Store(error) => PageError::store(lang)(error),
        ExportError::Forbidden(_) => PageError::new(lang, PageErrorKind::Forbidden),
        ExportError::Reconcile(error) => PageError::reconcile(lang)(error),
        other => PageError::invalid(lang, other.to_string()),
    };
    let period = Period::new(from, to).map_err(export_error)?;
    let mut bytes = Vec::new();
    export::write(
        &app.store,
        &viewer.actor(),
        kind,
        period,
        site.as_ref(),
        &app.finance,
        &mut bytes,
    )
    .await
    .map_err(export_error)?;
    let file = format!("{kind_name}-{from}-{to}.{extension}");
    Ok((
        [
            (header::CONTENT_TYPE, kind.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
