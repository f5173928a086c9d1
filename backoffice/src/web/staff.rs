//! The canteen staff's pages: find a pupil or an account (by name, pupil or account id, or
//! card UID), see the balance and what moved it, top up with a confirmation step and a
//! printable receipt, block a lost card and bind its replacement (the balance is the
//! account's, so it stays), edit dietary flags, and list today's meals at the site.
//!
//! Finance and admin see every site; staff only theirs. Every read and change goes through
//! `crate::manage`, as the API's do.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use proto::record::{MealVia, TopUpMethod};
use proto::snapshot::AccountState;
use proto::{AccountId, CardUid, Cents, PupilId, ServiceDate, SiteId, Text, Timestamp};
use serde::Deserialize;

use super::i18n::{Lang, Msg};
use super::layout::{self, csrf, money, nav_page, page};
use super::session::{Form, Viewer, signed_form, viewer};
use super::{DoneQuery, PageError, PageResult, see_other, service_today};
use crate::limits::{HISTORY_LINES_MAX, SEARCH_CHARS_MAX};
use crate::manage::{COUNTER as WRITERS, READERS, accounts, people};
use crate::state::SharedApp;
use crate::store::{AccountLine, PupilEntry, ServedMeal, Store};

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /staff?q=...`: the search form and its results.
pub async fn search<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, READERS).await?;
    let lang = viewer.lang;
    let text = query.q.trim();
    if text.chars().count() > SEARCH_CHARS_MAX {
        return Err(PageError::invalid(lang, Msg::SearchTooLong.text(lang)));
    }
    let results = people::search(&app.store, &viewer.actor(), text)
        .await
        .map_err(PageError::manage(lang))?;
    let content = html! {
        section.card.no-print {
            form.inline method="get" action="/staff" role="search" {
                div {
                    label for="q" { (Msg::SearchLabel.text(lang)) }
                    input id="q" name="q" type="search" value=(text) size="32" maxlength=(SEARCH_CHARS_MAX) autofocus;
                }
                button type="submit" { (Msg::Search.text(lang)) }
            }
        }
        @if !text.is_empty() {
            @if results.is_empty() {
                p.notice role="status" { (Msg::NoResults.text(lang)) }
            } @else {
                div.table {
                    table {
                        caption.sr-only { (Msg::SearchResults.text(lang)) }
                        thead { tr {
                            th scope="col" { (Msg::Pupil.text(lang)) }
                            th scope="col" { (Msg::PupilId.text(lang)) }
                            th scope="col" { (Msg::Site.text(lang)) }
                            th scope="col" { (Msg::Account.text(lang)) }
                            th scope="col" { (Msg::Cards.text(lang)) }
                        } }
                        tbody {
                            @for entry in &results {
                                tr {
                                    td { a href={ "/staff/accounts/" (entry.pupil.account) } {
                                        (entry.pupil.last_name) " " (entry.pupil.first_name) } }
                                    td { (entry.pupil.id) }
                                    td { (entry.site) }
                                    td { (entry.pupil.account) }
                                    td { (cards_summary(lang, entry)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(nav_page(&viewer, Msg::NavSearch, "/staff", content))
}

fn cards_summary(lang: Lang, entry: &PupilEntry) -> Markup {
    html! {
        @for (uid, blocked) in &entry.cards {
            code { (uid) }
            @if *blocked { " " span.badge.bad { (Msg::Blocked.text(lang)) } }
            br;
        }
    }
}

/// The account, its pupils the viewer may see and its latest lines: staff need a pupil of the
/// account at their site, and see only those.
async fn visible_account<S: Store>(
    app: &SharedApp<S>,
    viewer: &Viewer,
    account: &str,
    history_lines: usize,
) -> Result<(AccountId, accounts::AccountView), PageError> {
    let lang = viewer.lang;
    let id = AccountId::parse(account).map_err(PageError::not_found(lang))?;
    let view = accounts::view(&app.store, &viewer.actor(), &id, history_lines)
        .await
        .map_err(PageError::manage(lang))?;
    Ok((id, view))
}

/// What the account's forms tell when they come back.
const DONE_NOTICES: &[(&str, Msg)] = &[
    ("blocked", Msg::DoneBlocked),
    ("replaced", Msg::DoneReplaced),
    ("dietary", Msg::DoneDietary),
];

/// `GET /staff/accounts/{account}`.
pub async fn account<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, READERS).await?;
    let lang = viewer.lang;
    let (id, view) = visible_account(&app, &viewer, &account, HISTORY_LINES_MAX).await?;
    let done = query.notice(lang, DONE_NOTICES);
    let content = account_content(&viewer, &id, &view, done);
    let title = format!("{} {}", Msg::Account.text(lang), id);
    Ok(page(&viewer, &title, "/staff", content))
}

/// An account's page: what was just done, the balance, the top-up form for those who may,
/// each pupil, and the history.
fn account_content(
    viewer: &Viewer,
    id: &AccountId,
    view: &accounts::AccountView,
    done: Markup,
) -> Markup {
    let lang = viewer.lang;
    let writes = WRITERS.contains(&viewer.user.role);
    html! {
        (done)
        div.grid {
            (balance_card(lang, &view.state))
            @if writes { (top_up_form(viewer, id)) }
        }
        h2 { (Msg::Pupils.text(lang)) }
        @for entry in &view.pupils {
            (pupil_section(viewer, id, entry, writes))
        }
        (history_table(lang, &view.history))
    }
}

fn balance_card(lang: Lang, state: &AccountState) -> Markup {
    html! {
        section.card aria-labelledby="balance-title" {
            h2 id="balance-title" { (Msg::Balance.text(lang)) }
            p.balance id="balance" { (money(lang, state.balance)) }
            p { (Msg::OverdraftFloor.text(lang)) ": " (money(lang, state.overdraft_floor)) }
        }
    }
}

/// The first step of a top-up: amount, method and reference, confirmed on the next page.
fn top_up_form(viewer: &Viewer, id: &AccountId) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card aria-labelledby="top-up-title" {
            h2 id="top-up-title" { (Msg::TopUp.text(lang)) }
            form method="post" action={ "/staff/accounts/" (id) "/top-up" } {
                (csrf(viewer))
                label for="amount" { (Msg::AmountEuros.text(lang)) }
                input id="amount" name="amount" inputmode="decimal" required pattern="[0-9]+([.,][0-9]{1,2})?" size="10";
                label for="method" { (Msg::Method.text(lang)) }
                select id="method" name="method" {
                    option value="cash" { (Msg::Cash.text(lang)) }
                    option value="cheque" { (Msg::Cheque.text(lang)) }
                }
                label for="reference" { (Msg::Reference.text(lang)) }
                input id="reference" name="reference" maxlength="64";
                p { button type="submit" { (Msg::Continue.text(lang)) } }
            }
        }
    }
}

/// A pupil of the account: their cards and dietary flags, with the forms to change them for
/// those who may.
fn pupil_section(viewer: &Viewer, account: &AccountId, entry: &PupilEntry, writes: bool) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card aria-label={ (entry.pupil.first_name) " " (entry.pupil.last_name) } {
            h3 { (entry.pupil.first_name) " " (entry.pupil.last_name)
                " (" (entry.pupil.id) ", " (entry.site) ", " (Msg::Bracket.text(lang)) " " (entry.pupil.bracket) ")" }
            (pupil_cards(viewer, account, entry, writes))
            @if writes {
                (dietary_form(viewer, entry))
            } @else {
                p { (Msg::DietaryFlags.text(lang)) ": "
                    (entry.pupil.dietary.iter().map(Text::as_str).collect::<Vec<_>>().join(", ")) }
            }
        }
    }
}

fn dietary_form(viewer: &Viewer, entry: &PupilEntry) -> Markup {
    let lang = viewer.lang;
    html! {
        form.inline method="post" action={ "/staff/pupils/" (entry.pupil.id) "/dietary" } {
            (csrf(viewer))
            div {
                label for={ "dietary-" (entry.pupil.id) } { (Msg::DietaryFlags.text(lang)) }
                input id={ "dietary-" (entry.pupil.id) } name="dietary" size="40"
                    value=(entry.pupil.dietary.iter().map(Text::as_str).collect::<Vec<_>>().join(", "))
                    aria-describedby={ "dietary-help-" (entry.pupil.id) };
                small id={ "dietary-help-" (entry.pupil.id) } { " " (Msg::DietaryHelp.text(lang)) }
            }
            button type="submit" { (Msg::Save.text(lang)) }
        }
    }
}

/// The account's latest lines, in the order the use case gives them.
fn history_table(lang: Lang, history: &[AccountLine]) -> Markup {
    html! {
        h2 { (Msg::History.text(lang)) }
        @if history.is_empty() {
            p { (Msg::NoHistory.text(lang)) }
        } @else {
            div.table { table id="history" {
                thead { tr {
                    th scope="col" { (Msg::When.text(lang)) }
                    th scope="col" { (Msg::What.text(lang)) }
                    th scope="col" { (Msg::Detail.text(lang)) }
                    th.num scope="col" { (Msg::Amount.text(lang)) }
                } }
                tbody {
                    @for line in history {
                        tr {
                            td { (layout::local_time(line.at)) }
                            td { (kind_name(lang, &line.kind)) }
                            td { (line.detail) }
                            td.num { (money(lang, line.amount)) }
                        }
                    }
                }
            } }
        }
    }
}

fn kind_name(lang: Lang, kind: &str) -> &str {
    match kind {
        "meal" => Msg::KindMeal.text(lang),
        "top_up" => Msg::TopUp.text(lang),
        "void" => Msg::KindVoid.text(lang),
        "adjustment" => Msg::KindAdjustment.text(lang),
        "online_payment" => Msg::KindOnlinePayment.text(lang),
        other => other,
    }
}

fn pupil_cards(viewer: &Viewer, account: &AccountId, entry: &PupilEntry, writes: bool) -> Markup {
    let lang = viewer.lang;
    html! {
        @if entry.cards.is_empty() { p { (Msg::NoCards.text(lang)) } }
        ul {
            @for (uid, blocked) in &entry.cards {
                li {
                    (Msg::Card.text(lang)) " " code { (uid) } " "
                    @if *blocked {
                        span.badge.bad { (Msg::Blocked.text(lang)) }
                    } @else {
                        span.badge.ok { (Msg::Active.text(lang)) }
                        @if writes {
                            form.inline method="post" action={ "/staff/cards/" (uid) "/block" } {
                                (csrf(viewer))
                                input type="hidden" name="account" value=(account);
                                button.danger type="submit" { (Msg::BlockCard.text(lang)) }
                            }
                            form.inline method="post" action={ "/staff/cards/" (uid) "/replace" } {
                                (csrf(viewer))
                                input type="hidden" name="account" value=(account);
                                div {
                                    label for={ "new-uid-" (uid) } { (Msg::NewCardUid.text(lang)) }
                                    input id={ "new-uid-" (uid) } name="new_uid" required pattern="[0-9a-fA-F]{8,20}" size="20";
                                }
                                button.secondary type="submit" { (Msg::ReplaceCard.text(lang)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /staff/accounts/{account}/top-up`: first a confirmation page, then, with
/// `confirm=yes`, the top-up and its receipt.
pub async fn top_up<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, WRITERS, &body).await?;
    let lang = viewer.lang;
    let (id, _) = visible_account(&app, &viewer, &account, 0).await?;
    let asked = TopUpAsked::of_form(lang, &form)?;
    accounts::check_top_up(asked.amount).map_err(PageError::manage(lang))?;
    if form.get("confirm") != "yes" {
        let content = top_up_confirmation(&viewer, &id, &asked, &form);
        return Ok(page(
            &viewer,
            Msg::ConfirmTopUpTitle.text(lang),
            "/staff",
            content,
        ));
    }
    let at = app.clock.now();
    let outcome = accounts::top_up(
        &app.store,
        &viewer.actor(),
        &id,
        asked.amount,
        asked.method,
        asked.reference.clone(),
        at,
    )
    .await
    .map_err(PageError::manage(lang))?;
    tracing::info!(
        account = %id,
        amount = asked.amount.get(),
        user = viewer.user.name,
        "counter top-up from the web pages"
    );
    let content = top_up_receipt(&viewer, &id, &asked, at, outcome.balance);
    Ok(page(&viewer, Msg::Receipt.text(lang), "/staff", content))
}

/// A top-up as the counter's form asks for it.
struct TopUpAsked {
    amount: Cents,
    method: TopUpMethod,
    reference: Option<Text>,
}

impl TopUpAsked {
    fn of_form(lang: Lang, form: &Form) -> Result<TopUpAsked, PageError> {
        let amount = layout::parse_euros(form.get("amount"))
            .ok_or_else(|| PageError::invalid(lang, Msg::AmountInvalid.text(lang)))?;
        let method = match form.get("method") {
            "cash" => TopUpMethod::Cash,
            "cheque" => TopUpMethod::Cheque,
            _ => return Err(PageError::invalid(lang, Msg::MethodInvalid.text(lang))),
        };
        let reference = match form.get("reference") {
            "" => None,
            text => Some(
                Text::parse(text).map_err(|error| PageError::invalid(lang, error.to_string()))?,
            ),
        };
        Ok(TopUpAsked {
            amount,
            method,
            reference,
        })
    }

    fn method_name(&self, lang: Lang) -> &'static str {
        match self.method {
            TopUpMethod::Cash => Msg::Cash.text(lang),
            TopUpMethod::Cheque => Msg::Cheque.text(lang),
        }
    }
}

/// The top-up to confirm, and the form that posts it again, as typed, with `confirm=yes`.
fn top_up_confirmation(viewer: &Viewer, id: &AccountId, asked: &TopUpAsked, form: &Form) -> Markup {
    let lang = viewer.lang;
    html! {
        section.card {
            p { (Msg::ConfirmTopUp.text(lang)) }
            dl {
                dt { (Msg::Account.text(lang)) } dd { (id) }
                dt { (Msg::Amount.text(lang)) } dd id="confirm-amount" { (money(lang, asked.amount)) }
                dt { (Msg::Method.text(lang)) } dd { (asked.method_name(lang)) }
                @if let Some(reference) = &asked.reference { dt { (Msg::Reference.text(lang)) } dd { (reference) } }
            }
            form.inline method="post" action={ "/staff/accounts/" (id) "/top-up" } {
                (csrf(viewer))
                input type="hidden" name="amount" value=(form.get("amount"));
                input type="hidden" name="method" value=(form.get("method"));
                input type="hidden" name="reference" value=(form.get("reference"));
                input type="hidden" name="confirm" value="yes";
                button type="submit" id="confirm" { (Msg::Confirm.text(lang)) }
                a.button href={ "/staff/accounts/" (id) } { (Msg::Cancel.text(lang)) }
            }
        }
    }
}

/// The printable receipt of a top-up made `at`, with the balance it left.
fn top_up_receipt(
    viewer: &Viewer,
    id: &AccountId,
    asked: &TopUpAsked,
    at: Timestamp,
    balance: Cents,
) -> Markup {
    let lang = viewer.lang;
    html! {
        p.notice.no-print role="status" { (Msg::DoneTopUp.text(lang)) }
        div.receipt {
            h2 { (Msg::Receipt.text(lang)) }
            dl {
                dt { (Msg::When.text(lang)) } dd { (layout::local_time(at)) }
                dt { (Msg::Account.text(lang)) } dd { (id) }
                dt { (Msg::Amount.text(lang)) } dd { (money(lang, asked.amount)) }
                dt { (Msg::Method.text(lang)) } dd { (asked.method_name(lang)) }
                @if let Some(reference) = &asked.reference { dt { (Msg::Reference.text(lang)) } dd { (reference) } }
                dt { (Msg::NewBalance.text(lang)) } dd id="receipt-balance" { (money(lang, balance)) }
                dt { (Msg::Operator.text(lang)) } dd { (viewer.user.name) }
            }
        }
        p.no-print {
            button type="button" onclick=(super::headers::PRINT_HANDLER) { (Msg::Print.text(lang)) } " "
            a.button href={ "/staff/accounts/" (id) } { (Msg::BackToAccount.text(lang)) }
        }
    }
}

/// The card and the account page to come back to.
fn card_of_form(
    viewer: &Viewer,
    uid: &str,
    account: &str,
) -> Result<(CardUid, AccountId), PageError> {
    let lang = viewer.lang;
    let uid = CardUid::from_hex(uid).map_err(PageError::not_found(lang))?;
    let account =
        AccountId::parse(account).map_err(|error| PageError::invalid(lang, error.to_string()))?;
    Ok((uid, account))
}

/// The account's page after a change, saying what was `done`.
fn back_to_account(account: &AccountId, done: &str) -> Response {
    see_other(&format!("/staff/accounts/{account}?done={done}"))
}

/// `POST /staff/cards/{uid}/block`: a lost card goes on every kiosk's hotlist.
pub async fn block_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, WRITERS, &body).await?;
    let (uid, account) = card_of_form(&viewer, &uid, form.get("account"))?;
    people::block_card(&app.store, &viewer.actor(), &uid)
        .await
        .map_err(PageError::manage(viewer.lang))?;
    tracing::info!(card = %uid, user = viewer.user.name, "card blocked from the web pages");
    Ok(back_to_account(&account, "blocked"))
}

/// `POST /staff/cards/{uid}/replace`: blocks the card and binds the new one to its holder.
pub async fn replace_card<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, WRITERS, &body).await?;
    let lang = viewer.lang;
    let (uid, account) = card_of_form(&viewer, &uid, form.get("account"))?;
    let new_uid = CardUid::from_hex(&form.get("new_uid").to_ascii_lowercase())
        .map_err(|error| PageError::field(lang, Msg::NewCardUid, error))?;
    people::replace_card(&app.store, &viewer.actor(), &uid, &new_uid)
        .await
        .map_err(PageError::manage(lang))?;
    tracing::info!(card = %uid, new_card = %new_uid, user = viewer.user.name, "card replaced from the web pages");
    Ok(back_to_account(&account, "replaced"))
}

/// `POST /staff/pupils/{pupil}/dietary`: flags separated by commas.
pub async fn dietary<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Path(pupil): Path<String>,
    body: Bytes,
) -> PageResult {
    let (viewer, form) = signed_form(&app, &headers, WRITERS, &body).await?;
    let lang = viewer.lang;
    let id = PupilId::parse(&pupil).map_err(PageError::not_found(lang))?;
    let dietary = form
        .get("dietary")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|flag| !flag.is_empty())
        .map(Text::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PageError::field(lang, Msg::DietaryFlags, error))?;
    let pupil = people::set_dietary(&app.store, &viewer.actor(), &id, dietary)
        .await
        .map_err(PageError::manage(lang))?;
    Ok(back_to_account(&pupil.account, "dietary"))
}

#[derive(Debug, Deserialize)]
pub struct MealsQuery {
    #[serde(default)]
    site: String,
    #[serde(default)]
    day: String,
}

/// `GET /staff/meals?site=&day=`: the meals of a site's service day, today by default; staff
/// see their own site only.
pub async fn meals<S: Store>(
    State(app): State<SharedApp<S>>,
    headers: HeaderMap,
    Query(query): Query<MealsQuery>,
) -> PageResult {
    let viewer = viewer(&app, &headers, READERS).await?;
    let lang = viewer.lang;
    let site_meals = load_site_meals(&app, &viewer, &query).await?;
    let content = site_meals_content(lang, &site_meals);
    Ok(nav_page(&viewer, Msg::NavMeals, "/staff/meals", content))
}

/// The meals of one site's service day, and the sites the viewer may choose from.
struct SiteMeals {
    sites: Vec<SiteId>,
    /// The asked site, or the first the viewer may see; none if they may see none.
    site: Option<SiteId>,
    day: ServiceDate,
    meals: Vec<ServedMeal>,
}

/// The sites the viewer may see, the asked site (or the first) and day (or today), and the
/// meals served there that day.
async fn load_site_meals<S: Store>(
    app: &SharedApp<S>,
    viewer: &Viewer,
    query: &MealsQuery,
) -> Result<SiteMeals, PageError> {
    let lang = viewer.lang;
    let actor = viewer.actor();
    let sites = people::visible_sites(&app.store, &actor)
        .await
        .map_err(PageError::manage(lang))?;
    let site = match SiteId::parse(&query.site) {
        Ok(site) => Some(site),
        Err(_) => sites.first().cloned(),
    };
    let today = service_today(app, lang)?;
    let day = ServiceDate::parse(&query.day).unwrap_or(today);
    let mut meals = Vec::new();
    if let Some(site) = &site {
        meals = people::site_meals(&app.store, &actor, site, day)
            .await
            .map_err(PageError::manage(lang))?;
    }
    Ok(SiteMeals {
        sites,
        site,
        day,
        meals,
    })
}

/// The site and day to show, how many meals were served and for how much, and each meal.
fn site_meals_content(lang: Lang, site_meals: &SiteMeals) -> Markup {
    let SiteMeals {
        site, day, meals, ..
    } = site_meals;
    let total = Cents::checked_sum(meals.iter().map(|meal| meal.price)).unwrap_or(Cents::ZERO);
    html! {
        (site_and_day_choice(lang, site_meals))
        @if let Some(site) = site {
            p role="status" id="meal-count" { (Msg::Site.text(lang)) " " strong { (site) } ", " (day.to_string()) ": "
                strong { (meals.len()) } " " (Msg::MealsServed.text(lang)) ", " (money(lang, total)) }
        }
        @if !meals.is_empty() { (meals_table(lang, meals)) }
    }
}

/// The form to choose the day and, for those who see several, the site.
fn site_and_day_choice(lang: Lang, site_meals: &SiteMeals) -> Markup {
    html! {
        section.card.no-print {
            form.inline method="get" action="/staff/meals" {
                @if site_meals.sites.len() > 1 {
                    div {
                        label for="site" { (Msg::Site.text(lang)) }
                        select id="site" name="site" {
                            @for option in &site_meals.sites {
                                option value=(option) selected[Some(option) == site_meals.site.as_ref()] { (option) }
                            }
                        }
                    }
                }
                div {
                    label for="day" { (Msg::Day.text(lang)) }
                    input id="day" name="day" type="date" value=(site_meals.day.to_string());
                }
                button type="submit" { (Msg::Show.text(lang)) }
            }
        }
    }
}

fn meals_table(lang: Lang, meals: &[ServedMeal]) -> Markup {
    html! {
        div.table { table {
            thead { tr {
                th scope="col" { (Msg::Time.text(lang)) }
                th scope="col" { (Msg::PupilId.text(lang)) }
                th scope="col" { (Msg::Account.text(lang)) }
                th scope="col" { (Msg::Service.text(lang)) }
                th scope="col" { (Msg::Via.text(lang)) }
                th scope="col" { (Msg::Kiosk.text(lang)) }
                th.num scope="col" { (Msg::Price.text(lang)) }
            } }
            tbody {
                @for meal in meals {
                    tr {
                        td { (layout::local_clock(meal.kiosk_at)) }
                        td { (meal.pupil) }
                        td { a href={ "/staff/accounts/" (meal.account) } { (meal.account) } }
                        td { (meal.service) " (" (meal.meal_type) ")" }
                        td { @match &meal.via {
                            MealVia::Card(uid) => { (Msg::Card.text(lang)) " " code { (uid) } }
                            MealVia::Staff(staff) => { (Msg::ByStaff.text(lang)) " " (staff) }
                        } }
                        td { (meal.device) }
                        td.num { (money(lang, meal.price)) }
                    }
                }
            }
        } }
    }
}
