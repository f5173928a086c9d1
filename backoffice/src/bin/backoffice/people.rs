//! The subcommands that change kiosks, users, accounts, money, pupils, cards, tariffs,
//! services and staff: each parses its arguments and calls the same `backoffice::manage`
//! function as the HTTP API and the pages, as the operator at the server.

use std::path::Path;

use anyhow::Context as _;
use backoffice::manage::{Actor, accounts, devices, people, sites, tokens, users};
use backoffice::store::{Device, Store};
use backoffice::users::{Role, User};
use proto::record::TopUpMethod;
use proto::snapshot::{Card, CardHolder, LocalTime, Pupil, Service, Tariff, Weekday};
use proto::{
    AccountId, BracketId, CardUid, Cents, DeviceId, MealType, ParseError, PublicKey, PupilId,
    ServiceId, SiteId, SnapshotVersion, StaffId, Text, Timestamp,
};

use crate::args::{
    AccountCommand, AdjustArgs, CardCommand, DeviceCommand, PupilCommand, ServiceCommand,
    StaffCommand, TariffCommand, TokenCommand, TopUpArgs, UserCommand,
};

pub async fn device<S: Store>(
    store: &S,
    actor: &Actor,
    command: DeviceCommand,
    now: Timestamp,
) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Add {
            site,
            name,
            public_key,
        } => {
            let pem = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let key = PublicKey::from_pem(&pem)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let device = Device {
                id: DeviceId::parse(&name).context("--name")?,
                site: SiteId::parse(&site).context("--site")?,
                key,
                revoked_at: None,
            };
            devices::add(store, actor, &device, now).await?;
            println!(
                "device {name} added to site {site}, key {}",
                key.fingerprint()
            );
        }
        DeviceCommand::Revoke { name } => {
            let device = DeviceId::parse(&name).context("--name")?;
            devices::revoke(store, actor, &device, now).await?;
            println!("device {name} revoked");
        }
    }
    Ok(())
}

pub async fn user<S: Store>(
    store: &S,
    actor: &Actor,
    command: UserCommand,
    now: Timestamp,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, role, site } => {
            let (role, site) = role_and_site(&role, site.as_deref())?;
            let password = first_line("the password")?;
            let user = User::new(&name, role, site, &password)?;
            users::add(store, actor, &user, now).await?;
            println!("user {name} added with role {}", role.as_str());
        }
        UserCommand::Password { name } => {
            let stored = users::get(store, actor, &name)
                .await?
                .with_context(|| format!("no user {name}"))?;
            let password = first_line("the password")?;
            let user = User {
                disabled: stored.disabled,
                ..User::new(&name, stored.role, stored.site, &password)?
            };
            users::update(store, actor, &user).await?;
            println!("password of {name} changed; their sessions ended");
        }
        UserCommand::Disable { name } => {
            users::set_disabled(store, actor, &name, true, now).await?;
            println!("user {name} disabled; their sessions ended");
        }
        UserCommand::Enable { name } => {
            users::set_disabled(store, actor, &name, false, now).await?;
            println!("user {name} enabled");
        }
    }
    Ok(())
}

pub async fn token<S: Store>(
    store: &S,
    actor: &Actor,
    command: TokenCommand,
    now: Timestamp,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            role,
            site,
            days,
        } => {
            let (role, site) = role_and_site(&role, site.as_deref())?;
            let new = tokens::NewToken {
                name,
                role,
                site,
                days,
            };
            let (token, row) = tokens::create(store, actor, new, now).await?;
            eprintln!(
                "token {} ({}) made, valid until {}; it is shown once:",
                row.name,
                row.role.as_str(),
                row.expires_at
            );
            println!("{token}");
        }
        TokenCommand::List => {
            for row in tokens::list(store, actor).await? {
                let state = match row.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None if row.expires_at <= now => "expired".to_owned(),
                    None => "valid".to_owned(),
                };
                let site = row.site.as_ref().map_or("-", SiteId::as_str);
                println!(
                    "{}\t{}\t{site}\tuntil {}\t{state}\tmade by {}",
                    row.name,
                    row.role.as_str(),
                    row.expires_at,
                    row.created_by
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(store, actor, &name, now).await?;
            println!("token {name} revoked");
        }
    }
    Ok(())
}

/// `--role` and `--site` of a user or an API token.
fn role_and_site(role: &str, site: Option<&str>) -> anyhow::Result<(Role, Option<SiteId>)> {
    let role = Role::parse(role)
        .with_context(|| format!("--role {role}: expected staff, finance, admin or payments"))?;
    let site = site
        .map(|site| SiteId::parse(site).context("--site"))
        .transpose()?;
    Ok((role, site))
}

pub async fn account<S: Store>(
    store: &S,
    actor: &Actor,
    AccountCommand::Set {
        account,
        overdraft_floor,
    }: AccountCommand,
    now: Timestamp,
) -> anyhow::Result<()> {
    let id = arg("ACCOUNT", &account, AccountId::parse)?;
    let floor = Cents::new(overdraft_floor);
    accounts::check_overdraft_floor(floor).context("--overdraft-floor")?;
    let (_, opened) = accounts::save_account(store, actor, &id, floor, now).await?;
    let done = if opened { "opened" } else { "updated" };
    println!("account {account} {done}, overdraft floor {overdraft_floor} cents");
    Ok(())
}

pub async fn pupil<S: Store>(
    store: &S,
    actor: &Actor,
    PupilCommand::Set {
        site,
        id,
        account,
        first_name,
        last_name,
        bracket,
        dietary,
    }: PupilCommand,
) -> anyhow::Result<()> {
    let site = arg("--site", &site, SiteId::parse)?;
    let pupil = Pupil {
        id: arg("--id", &id, PupilId::parse)?,
        account: arg("--account", &account, AccountId::parse)?,
        first_name: arg("--first-name", &first_name, Text::parse)?,
        last_name: arg("--last-name", &last_name, Text::parse)?,
        bracket: arg("--bracket", &bracket, BracketId::parse)?,
        dietary: dietary
            .iter()
            .map(|flag| arg("--dietary", flag, Text::parse))
            .collect::<anyhow::Result<_>>()?,
    };
    let version = people::save_pupil(store, actor, &site, &pupil).await?;
    print_changed(format_args!("pupil {id} saved at site {site}"), version);
    Ok(())
}

pub async fn card<S: Store>(store: &S, actor: &Actor, command: CardCommand) -> anyhow::Result<()> {
    match command {
        CardCommand::Assign { uid, holder } => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            let holder = match (holder.pupil, holder.staff) {
                (Some(pupil), _) => CardHolder::Pupil(arg("--pupil", &pupil, PupilId::parse)?),
                (None, Some(staff)) => CardHolder::Staff(arg("--staff", &staff, StaffId::parse)?),
                (None, None) => anyhow::bail!("--pupil or --staff is required"),
            };
            let version = people::assign_card(store, actor, &Card { uid, holder }).await?;
            print_changed(format_args!("card {uid} assigned"), version);
        }
        CardCommand::Block { uid } => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            let version = people::block_card(store, actor, &uid).await?;
            print_changed(format_args!("card {uid} blocked"), version);
        }
        CardCommand::Replace { uid, new_uid } => {
            let uid = arg("--uid", &uid, CardUid::from_hex)?;
            let new_uid = arg("--new-uid", &new_uid, CardUid::from_hex)?;
            let version = people::replace_card(store, actor, &uid, &new_uid).await?;
            let what = format_args!("card {uid} blocked, card {new_uid} assigned to its holder");
            print_changed(what, version);
        }
    }
    Ok(())
}

pub async fn tariff<S: Store>(
    store: &S,
    actor: &Actor,
    TariffCommand::Set {
        site,
        bracket,
        meal_type,
        price,
    }: TariffCommand,
) -> anyhow::Result<()> {
    let site = arg("--site", &site, SiteId::parse)?;
    let tariff = Tariff {
        bracket: arg("--bracket", &bracket, BracketId::parse)?,
        meal_type: arg("--meal-type", &meal_type, MealType::parse)?,
        price: Cents::new(price),
    };
    sites::check_tariff(&tariff).context("--price")?;
    let version = sites::save_tariff(store, actor, &site, &tariff).await?;
    let what = format_args!("tariff {bracket} {meal_type} at site {site}: {price} cents");
    print_changed(what, version);
    Ok(())
}

pub async fn service<S: Store>(
    store: &S,
    actor: &Actor,
    ServiceCommand::Set {
        site,
        id,
        name,
        meal_type,
        weekdays,
        start,
        end,
    }: ServiceCommand,
) -> anyhow::Result<()> {
    let site = arg("--site", &site, SiteId::parse)?;
    let service = Service {
        id: arg("--id", &id, ServiceId::parse)?,
        name: arg("--name", &name, Text::parse)?,
        meal_type: arg("--meal-type", &meal_type, MealType::parse)?,
        weekdays: weekdays
            .iter()
            .map(|day| {
                from_json::<Weekday>(day)
                    .with_context(|| format!("--weekdays {day}: expected monday..sunday"))
            })
            .collect::<anyhow::Result<_>>()?,
        start: LocalTime::parse(&start)
            .with_context(|| format!("--start {start}: expected HH:MM"))?,
        end: LocalTime::parse(&end).with_context(|| format!("--end {end}: expected HH:MM"))?,
    };
    let version = sites::save_service(store, actor, &site, &service).await?;
    print_changed(format_args!("service {id} saved at site {site}"), version);
    Ok(())
}

pub async fn staff<S: Store>(
    store: &S,
    actor: &Actor,
    StaffCommand::Set { site, id, name }: StaffCommand,
) -> anyhow::Result<()> {
    let site_id = arg("--site", &site, SiteId::parse)?;
    let staff_id = arg("--id", &id, StaffId::parse)?;
    let name = arg("--name", &name, Text::parse)?;
    let pin = first_line("the PIN")?;
    let version = people::save_staff(store, actor, &site_id, staff_id, name, pin).await?;
    print_changed(format_args!("staff {id} saved at site {site}"), version);
    Ok(())
}

pub async fn top_up<S: Store>(
    store: &S,
    actor: &Actor,
    command: TopUpArgs,
    now: Timestamp,
) -> anyhow::Result<()> {
    let method = from_json::<TopUpMethod>(&command.method)
        .with_context(|| format!("--method {}: expected cash or cheque", command.method))?;
    let account = arg("--account", &command.account, AccountId::parse)?;
    let reference = command
        .reference
        .map(|reference| arg("--reference", &reference, Text::parse))
        .transpose()?;
    let amount = Cents::new(command.amount);
    let moved = accounts::top_up(store, actor, &account, amount, method, reference, now).await?;
    print_moved(&account, amount, moved);
    Ok(())
}

pub async fn adjust<S: Store>(
    store: &S,
    actor: &Actor,
    command: AdjustArgs,
    now: Timestamp,
) -> anyhow::Result<()> {
    let account = arg("--account", &command.account, AccountId::parse)?;
    let reason = arg("--reason", &command.reason, Text::parse)?;
    let amount = Cents::new(command.amount);
    let moved = accounts::adjust(store, actor, &account, amount, reason, now).await?;
    print_moved(&account, amount, moved);
    Ok(())
}

/// Says what a change saved and the snapshot version the kiosks fetch it at.
fn print_changed(what: std::fmt::Arguments<'_>, version: SnapshotVersion) {
    println!("{what} (snapshot version {})", version.0);
}

fn print_moved(account: &AccountId, amount: Cents, moved: accounts::Moved) {
    println!(
        "account {account}: {:+} cents, balance {} cents (snapshot version {})",
        amount.get(),
        moved.balance.get(),
        moved.version.0
    );
}

pub async fn import<S: Store>(
    store: &S,
    actor: &Actor,
    file: &Path,
    now: Timestamp,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let rows =
        backoffice::import::parse(&text).map_err(backoffice::import::ImportError::Invalid)?;
    let total = rows.len();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    backoffice::import::apply(store, actor, &rows, now, |done| {
        if terminal {
            eprint!("\rimporting: {done}/{total} rows");
        }
    })
    .await?;
    if terminal {
        eprintln!();
    }
    println!("imported {total} rows from {}", file.display());
    Ok(())
}

pub async fn transfer<S: Store>(
    store: &S,
    actor: &Actor,
    file: &Path,
    now: Timestamp,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let transfer =
        backoffice::transfer::parse(&text).with_context(|| format!("{}", file.display()))?;
    let device = transfer.device.clone();
    let outcome = backoffice::transfer::ingest(store, actor, transfer, now).await?;
    println!(
        "{device}: {} stored, {} duplicates, {} quarantined; held through {}",
        outcome.stored,
        outcome.duplicates,
        outcome.quarantined,
        outcome
            .acknowledged
            .map_or_else(|| "none".to_owned(), |seq| seq.to_string())
    );
    Ok(())
}

/// A command-line value through its `proto` parser, the error naming the flag.
pub fn arg<T>(
    flag: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> anyhow::Result<T> {
    parse(text).with_context(|| format!("{flag} {text:?}"))
}

/// A value of a `proto` enum from its name, as the HTTP API's JSON spells it.
fn from_json<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        name.to_owned(),
    ))?)
}

/// A secret read from the first line of standard input, so that it is never on the command
/// line.
fn first_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("reading {what} from standard input"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
