//! Accounts, pupils, cards, staff, a site's tariffs, services and kiosk settings, back-office
//! users, and what snapshots and the web pages read of them.

use std::collections::BTreeMap;
use std::future::Future;

use proto::record::MealVia;
use proto::snapshot::{
    AccountState, CardHolder, KioskSettings, Pupil, Service, StaffCredential, Tariff,
};
use proto::{
    AccountId, CardUid, Cents, DeviceId, MealType, PupilId, Seq, ServiceDate, ServiceId, SiteId,
    StaffId, Timestamp,
};

use super::{
    corrupt, limit, parse_account, parse_card, parse_json, parse_pupil, parse_seq,
    parse_service_date, parse_site, parse_timestamp, since_column, to_json,
};
use crate::store::StoreError;
use crate::store::sql::{Dialect, Row, Sql, Value, values};
use crate::users::{Role, User};

/// A pupil as staff find them, with their cards (blocked ones last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PupilEntry {
    pub site: SiteId,
    pub pupil: Pupil,
    pub cards: Vec<(CardUid, bool)>,
}

/// One line of an account's history: a kiosk's record or a back-office operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLine {
    pub at: Timestamp,
    pub amount: Cents,
    /// `meal`, `top_up`, `void`, `adjustment`, `online_payment`.
    pub kind: String,
    /// The kiosk for a record; the user and detail for an operation.
    pub detail: String,
}

/// Meals and revenue of one site on one service day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MealDay {
    pub site: SiteId,
    pub date: ServiceDate,
    pub meals: i64,
    pub revenue: Cents,
}

/// A meal served, as the site's meals page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedMeal {
    pub device: DeviceId,
    pub seq: Seq,
    pub kiosk_at: Timestamp,
    pub service: ServiceId,
    pub meal_type: MealType,
    pub account: AccountId,
    pub pupil: PupilId,
    pub via: MealVia,
    pub price: Cents,
}

/// A card as stored: who holds it, at which site, and whether it is blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRow {
    pub uid: CardUid,
    pub site: SiteId,
    pub holder: CardHolder,
    pub blocked: bool,
}

/// What a site's kiosks see that changed after a version (everything, for a full snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteRows {
    pub accounts: Vec<AccountState>,
    pub pupils: Vec<Pupil>,
    /// The site's cards, held by its pupils and staff, blocked ones included.
    pub cards: Vec<CardRow>,
    /// Blocked UIDs, city-wide.
    pub hotlist: Vec<CardUid>,
    pub tariffs: Vec<Tariff>,
    pub services: Vec<Service>,
    pub staff: Vec<StaffCredential>,
    /// The site's own settings, if it has some.
    pub settings: Option<KioskSettings>,
}

pub trait PeopleRows: Sql {
    /// Opens an account with a zero balance; [`StoreError::AlreadyExists`] if it exists.
    fn insert_account(
        &mut self,
        account: &AccountId,
        overdraft_floor: Cents,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_new(
            "INSERT INTO accounts (id, balance, overdraft_floor, created_at, version)
             VALUES ($1, 0, $2, $3, 0)",
            values![account.as_str(), overdraft_floor.get(), at.unix_ms()],
            "account",
            account.as_str(),
        )
    }

    fn set_overdraft_floor(
        &mut self,
        account: &AccountId,
        overdraft_floor: Cents,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.update_existing(
            "UPDATE accounts SET overdraft_floor = $1 WHERE id = $2",
            values![overdraft_floor.get(), account.as_str()],
            "account",
            account.as_str(),
        )
    }

    fn account(
        &mut self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<AccountState>, StoreError>> + Send {
        self.query_optional(
            "SELECT id, balance, overdraft_floor FROM accounts WHERE id = $1",
            values![account.as_str()],
            read_account,
        )
    }

    /// The account's balance, held until the end of the transaction.
    fn lock_account(
        &mut self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send {
        let sql = self.dialect().pick(
            "SELECT balance FROM accounts WHERE id = $1",
            "SELECT balance FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
        );
        self.query_optional(sql, values![account.as_str()], |row| row.int(0))
    }

    /// Every account's overdraft floor.
    fn overdraft_floors(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(AccountId, Cents)>, StoreError>> + Send {
        self.query(
            "SELECT id, overdraft_floor FROM accounts ORDER BY id",
            Vec::new(),
            |row| Ok((parse_account(&row.text(0)?)?, Cents::new(row.int(1)?))),
        )
    }

    /// The site of a card's holder, if the holder exists.
    fn holder_site(
        &mut self,
        holder: &CardHolder,
    ) -> impl Future<Output = Result<Option<SiteId>, StoreError>> + Send {
        let (sql, id) = match holder {
            CardHolder::Pupil(pupil) => ("SELECT site FROM pupils WHERE id = $1", pupil.as_str()),
            CardHolder::Staff(staff) => ("SELECT site FROM staff WHERE id = $1", staff.as_str()),
        };
        self.query_optional(sql, values![id], |row| parse_site(&row.text(0)?))
    }

    /// Creates or replaces a pupil at `site` (its version is stamped by the caller).
    fn upsert_pupil(
        &mut self,
        site: &SiteId,
        pupil: &Pupil,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let data = to_json(pupil)?;
            self.write(
                "INSERT INTO pupils (id, site, account, data, version) VALUES ($1, $2, $3, $4, 0)
                 ON CONFLICT (id) DO UPDATE SET site = $2, account = $3, data = $4",
                values![
                    pupil.id.as_str(),
                    site.as_str(),
                    pupil.account.as_str(),
                    data
                ],
            )
            .await
        }
    }

    fn upsert_staff(
        &mut self,
        site: &SiteId,
        staff: &StaffCredential,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let data = to_json(staff)?;
            self.write(
                "INSERT INTO staff (id, site, data, version) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (id) DO UPDATE SET site = $2, data = $3",
                values![staff.id.as_str(), site.as_str(), data],
            )
            .await
        }
    }

    fn card(
        &mut self,
        uid: &CardUid,
    ) -> impl Future<Output = Result<Option<CardRow>, StoreError>> + Send {
        self.query_optional(
            "SELECT uid, site, holder_kind, holder, blocked FROM cards WHERE uid = $1",
            values![uid.as_bytes()],
            read_card,
        )
    }

    /// Binds a UID; [`StoreError::AlreadyExists`] if it was ever bound.
    fn insert_card(
        &mut self,
        uid: &CardUid,
        site: &SiteId,
        holder: &CardHolder,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let (kind, id) = holder_columns(holder);
            self.insert_new(
                "INSERT INTO cards (uid, site, holder_kind, holder, blocked, version)
                 VALUES ($1, $2, $3, $4, FALSE, 0)",
                values![uid.as_bytes(), site.as_str(), kind, id],
                "card",
                &uid.to_string(),
            )
            .await
        }
    }

    fn block_card(&mut self, uid: &CardUid) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.update_existing(
                "UPDATE cards SET blocked = TRUE WHERE uid = $1",
                values![uid.as_bytes()],
                "card",
                &uid.to_string(),
            )
            .await
        }
    }

    fn upsert_tariff(
        &mut self,
        site: &SiteId,
        tariff: &Tariff,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(
            "INSERT INTO tariffs (site, bracket, meal_type, price, version)
             VALUES ($1, $2, $3, $4, 0)
             ON CONFLICT (site, bracket, meal_type) DO UPDATE SET price = $4",
            values![
                site.as_str(),
                tariff.bracket.as_str(),
                tariff.meal_type.as_str(),
                tariff.price.get()
            ],
        )
    }

    fn upsert_service(
        &mut self,
        site: &SiteId,
        service: &Service,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let data = to_json(service)?;
            self.write(
                "INSERT INTO services (site, id, data, version) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (site, id) DO UPDATE SET data = $3",
                values![site.as_str(), service.id.as_str(), data],
            )
            .await
        }
    }

    fn upsert_settings(
        &mut self,
        site: &SiteId,
        settings: &KioskSettings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let data = to_json(settings)?;
            self.write(
                "INSERT INTO kiosk_settings (site, data, version) VALUES ($1, $2, 0)
                 ON CONFLICT (site) DO UPDATE SET data = $2",
                values![site.as_str(), data],
            )
            .await
        }
    }

    /// Every service of every site, by site and id.
    fn services(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(SiteId, Service)>, StoreError>> + Send {
        self.query(
            "SELECT site, data FROM services ORDER BY site, id",
            Vec::new(),
            |row| {
                Ok((
                    parse_site(&row.text(0)?)?,
                    parse_json("service", &row.text(1)?)?,
                ))
            },
        )
    }

    /// Sites named by kiosks, pupils, tariffs or services.
    fn sites(&mut self) -> impl Future<Output = Result<Vec<SiteId>, StoreError>> + Send {
        self.query(
            "SELECT site FROM devices UNION SELECT site FROM pupils
             UNION SELECT site FROM tariffs UNION SELECT site FROM services ORDER BY 1",
            Vec::new(),
            |row| parse_site(&row.text(0)?),
        )
    }

    /// A site's tariffs and services.
    fn site_setup(
        &mut self,
        site: &SiteId,
    ) -> impl Future<Output = Result<(Vec<Tariff>, Vec<Service>), StoreError>> + Send {
        self.site_setup_since(site, None)
    }

    /// A site's tariffs and services with a version above `since` (all when none).
    fn site_setup_since(
        &mut self,
        site: &SiteId,
        since: Option<proto::SnapshotVersion>,
    ) -> impl Future<Output = Result<(Vec<Tariff>, Vec<Service>), StoreError>> + Send {
        async move {
            let after = since_column(since);
            let tariffs = self
                .query(
                    "SELECT bracket, meal_type, price FROM tariffs WHERE site = $1 AND version > $2
                     ORDER BY bracket, meal_type",
                    values![site.as_str(), after],
                    read_tariff,
                )
                .await?;
            let services = self
                .query(
                    "SELECT data FROM services WHERE site = $1 AND version > $2 ORDER BY id",
                    values![site.as_str(), after],
                    |row| parse_json("service", &row.text(0)?),
                )
                .await?;
            Ok((tariffs, services))
        }
    }

    /// What `site`'s kiosks see with a version above `since` (everything when none).
    fn site_rows(
        &mut self,
        site: &SiteId,
        since: Option<proto::SnapshotVersion>,
    ) -> impl Future<Output = Result<SiteRows, StoreError>> + Send {
        async move {
            let after = since_column(since);
            let at_site = || values![site.as_str(), after];
            let accounts = self
                .query(
                    "SELECT id, balance, overdraft_floor FROM accounts
                     WHERE EXISTS (SELECT 1 FROM pupils
                                   WHERE pupils.account = accounts.id AND site = $1)
                       AND version > $2
                     ORDER BY id",
                    at_site(),
                    read_account,
                )
                .await?;
            let pupils = self
                .query(
                    "SELECT data FROM pupils WHERE site = $1 AND version > $2 ORDER BY id",
                    at_site(),
                    |row| parse_json("pupil", &row.text(0)?),
                )
                .await?;
            let cards = self
                .query(
                    "SELECT uid, site, holder_kind, holder, blocked FROM cards
                     WHERE site = $1 AND version > $2 ORDER BY uid",
                    at_site(),
                    read_card,
                )
                .await?;
            let hotlist = self
                .query(
                    "SELECT uid FROM cards WHERE blocked AND version > $1 ORDER BY uid",
                    values![after],
                    |row| parse_card(&row.bytes(0)?),
                )
                .await?;
            let (tariffs, services) = self.site_setup_since(site, since).await?;
            let staff = self
                .query(
                    "SELECT data FROM staff WHERE site = $1 AND version > $2 ORDER BY id",
                    at_site(),
                    |row| parse_json("staff", &row.text(0)?),
                )
                .await?;
            let settings = self
                .query_optional(
                    "SELECT data FROM kiosk_settings WHERE site = $1 AND version > $2",
                    at_site(),
                    |row| parse_json("kiosk settings", &row.text(0)?),
                )
                .await?;
            Ok(SiteRows {
                accounts,
                pupils,
                cards,
                hotlist,
                tariffs,
                services,
                staff,
                settings,
            })
        }
    }

    /// Up to `limit` pupils whose id or account is `text`, or whose names contain it (any case),
    /// at `site` if given.
    fn search_pupils(
        &mut self,
        text: &str,
        site: Option<&SiteId>,
        limit_rows: usize,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send {
        async move {
            let text = text.trim();
            let sql = self.dialect().pick(
                "SELECT id, site, data FROM pupils
                 WHERE ($1 IS NULL OR site = $1)
                   AND (id = $2 OR account = $2
                        OR lower(json_extract(data, '$.first_name') || ' '
                                 || json_extract(data, '$.last_name')) LIKE $3 ESCAPE '\\'
                        OR lower(json_extract(data, '$.last_name') || ' '
                                 || json_extract(data, '$.first_name')) LIKE $3 ESCAPE '\\')
                 ORDER BY json_extract(data, '$.last_name'), json_extract(data, '$.first_name'), id
                 LIMIT $4",
                "SELECT id, site, data FROM pupils
                 WHERE ($1::TEXT IS NULL OR site = $1)
                   AND (id = $2 OR account = $2
                        OR lower((data::jsonb ->> 'first_name') || ' '
                                 || (data::jsonb ->> 'last_name')) LIKE $3
                        OR lower((data::jsonb ->> 'last_name') || ' '
                                 || (data::jsonb ->> 'first_name')) LIKE $3)
                 ORDER BY data::jsonb ->> 'last_name', data::jsonb ->> 'first_name', id
                 LIMIT $4",
            );
            let pupils = self
                .query(
                    sql,
                    values![
                        site.map(SiteId::as_str),
                        text,
                        contains_pattern(text),
                        limit(limit_rows)
                    ],
                    read_pupil_row,
                )
                .await?;
            self.with_cards(pupils).await
        }
    }

    /// The pupils of an account.
    fn account_pupils(
        &mut self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send {
        async move {
            let pupils = self
                .query(
                    "SELECT id, site, data FROM pupils WHERE account = $1 ORDER BY id",
                    values![account.as_str()],
                    read_pupil_row,
                )
                .await?;
            self.with_cards(pupils).await
        }
    }

    /// Pupils with their cards, blocked ones last.
    fn with_cards(
        &mut self,
        pupils: Vec<(SiteId, Pupil)>,
    ) -> impl Future<Output = Result<Vec<PupilEntry>, StoreError>> + Send {
        async move {
            let mut cards: BTreeMap<PupilId, Vec<(CardUid, bool)>> = BTreeMap::new();
            if !pupils.is_empty() {
                let ids = pupils.iter().map(|(_, pupil)| pupil.id.to_string());
                let (sql, list) = match self.dialect() {
                    Dialect::Sqlite => (
                        "SELECT holder, uid, blocked FROM cards
                         WHERE holder_kind = 'pupil' AND holder IN (SELECT value FROM json_each($1))
                         ORDER BY holder, blocked, uid",
                        Value::Text(
                            serde_json::to_string(&ids.collect::<Vec<_>>()).unwrap_or_default(),
                        ),
                    ),
                    Dialect::Postgres => (
                        "SELECT holder, uid, blocked FROM cards
                         WHERE holder_kind = 'pupil' AND holder = ANY($1)
                         ORDER BY holder, blocked, uid",
                        Value::Texts(ids.collect()),
                    ),
                };
                let rows = self
                    .query(sql, vec![list], |row| {
                        Ok((
                            parse_pupil(&row.text(0)?)?,
                            parse_card(&row.bytes(1)?)?,
                            row.bool(2)?,
                        ))
                    })
                    .await?;
                for (pupil, uid, blocked) in rows {
                    cards.entry(pupil).or_default().push((uid, blocked));
                }
            }
            Ok(pupils
                .into_iter()
                .map(|(site, pupil)| PupilEntry {
                    cards: cards.remove(&pupil.id).unwrap_or_default(),
                    site,
                    pupil,
                })
                .collect())
        }
    }

    /// The latest `limit` movements and operations of an account, newest first.
    fn account_history(
        &mut self,
        account: &AccountId,
        limit_rows: usize,
    ) -> impl Future<Output = Result<Vec<AccountLine>, StoreError>> + Send {
        self.query(
            "SELECT at, amount, kind, detail FROM (
                SELECT * FROM (
                    SELECT m.at AS at, m.amount AS amount,
                           CASE WHEN m.reverses_seq IS NULL THEN r.kind ELSE 'void' END AS kind,
                           m.device AS detail
                    FROM movements m JOIN records r ON r.device = m.device AND r.seq = m.seq
                    WHERE m.account = $1 ORDER BY m.at DESC LIMIT $2) AS moved
                UNION ALL
                SELECT * FROM (
                    SELECT at, amount, kind, user_name || ': ' || detail AS detail
                    FROM operations WHERE account = $1 ORDER BY at DESC LIMIT $2) AS operated
             ) AS lines
             ORDER BY at DESC LIMIT $2",
            values![account.as_str(), limit(limit_rows)],
            |row| {
                Ok(AccountLine {
                    at: parse_timestamp(row.int(0)?)?,
                    amount: Cents::new(row.int(1)?),
                    kind: row.text(2)?,
                    detail: row.text(3)?,
                })
            },
        )
    }

    /// Up to `limit` meals served at `site` on `date`, in kiosk time order.
    fn site_meals(
        &mut self,
        site: &SiteId,
        date: ServiceDate,
        limit_rows: usize,
    ) -> impl Future<Output = Result<Vec<ServedMeal>, StoreError>> + Send {
        self.query(
            "SELECT device, seq, kiosk_at, service, meal_type, account, pupil, via_card,
                    via_staff, price
             FROM meals WHERE site = $1 AND service_date = $2
             ORDER BY kiosk_at, device, seq LIMIT $3",
            values![site.as_str(), date.to_string(), limit(limit_rows)],
            read_served_meal,
        )
    }

    /// Meals and revenue per site and service day, from `from` to `to` inclusive.
    fn meal_days(
        &mut self,
        from: ServiceDate,
        to: ServiceDate,
    ) -> impl Future<Output = Result<Vec<MealDay>, StoreError>> + Send {
        self.query(
            "SELECT site, service_date, meals, revenue FROM meal_days
             WHERE service_date >= $1 AND service_date <= $2
             ORDER BY service_date, site",
            values![from.to_string(), to.to_string()],
            |row| {
                Ok(MealDay {
                    site: parse_site(&row.text(0)?)?,
                    date: parse_service_date(&row.text(1)?)?,
                    meals: row.int(2)?,
                    revenue: Cents::new(row.int(3)?),
                })
            },
        )
    }

    /// Adds a user; [`StoreError::AlreadyExists`] if the name is taken.
    fn insert_user(
        &mut self,
        user: &User,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_new(
            "INSERT INTO users (name, role, site, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            values![
                user.name.as_str(),
                user.role.as_str(),
                user.site.as_ref().map(SiteId::as_str),
                user.password_hash.as_str(),
                at.unix_ms()
            ],
            "user",
            &user.name,
        )
    }

    /// Disables a user from `at` on, or enables them again (`None`).
    fn set_user_disabled(
        &mut self,
        name: &str,
        at: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.update_existing(
            "UPDATE users SET disabled_at = $1 WHERE name = $2",
            values![at.map(Timestamp::unix_ms), name],
            "user",
            name,
        )
    }

    /// Changes an existing user's role, site and password hash.
    fn update_user(&mut self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.update_existing(
            "UPDATE users SET role = $1, site = $2, password_hash = $3 WHERE name = $4",
            values![
                user.role.as_str(),
                user.site.as_ref().map(SiteId::as_str),
                user.password_hash.as_str(),
                user.name.as_str()
            ],
            "user",
            &user.name,
        )
    }

    fn user(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        self.query_optional(
            "SELECT name, role, site, password_hash, disabled_at FROM users WHERE name = $1",
            values![name],
            read_user,
        )
    }

    /// Every back-office user, by name.
    fn users(&mut self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send {
        self.query(
            "SELECT name, role, site, password_hash, disabled_at FROM users ORDER BY name",
            Vec::new(),
            read_user,
        )
    }
}

impl<T: Sql> PeopleRows for T {}

fn read_account(row: &dyn Row) -> Result<AccountState, StoreError> {
    Ok(AccountState {
        id: parse_account(&row.text(0)?)?,
        balance: Cents::new(row.int(1)?),
        overdraft_floor: Cents::new(row.int(2)?),
    })
}

fn read_card(row: &dyn Row) -> Result<CardRow, StoreError> {
    Ok(CardRow {
        uid: parse_card(&row.bytes(0)?)?,
        site: parse_site(&row.text(1)?)?,
        holder: parse_holder(&row.text(2)?, &row.text(3)?)?,
        blocked: row.bool(4)?,
    })
}

fn read_tariff(row: &dyn Row) -> Result<Tariff, StoreError> {
    Ok(Tariff {
        bracket: proto::BracketId::parse(&row.text(0)?)
            .map_err(|error| corrupt("bracket", error))?,
        meal_type: MealType::parse(&row.text(1)?).map_err(|error| corrupt("meal type", error))?,
        price: Cents::new(row.int(2)?),
    })
}

fn read_pupil_row(row: &dyn Row) -> Result<(SiteId, Pupil), StoreError> {
    let id = row.text(0)?;
    let pupil: Pupil = parse_json("pupil", &row.text(2)?)?;
    if pupil.id.as_str() != id {
        return Err(corrupt(
            "pupil",
            format!("row {id} holds pupil {}", pupil.id),
        ));
    }
    Ok((parse_site(&row.text(1)?)?, pupil))
}

pub(super) fn read_user(row: &dyn Row) -> Result<User, StoreError> {
    let role = row.text(1)?;
    Ok(User {
        name: row.text(0)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        site: row.opt_text(2)?.map(|site| parse_site(&site)).transpose()?,
        password_hash: row.text(3)?,
        disabled: row.opt_int(4)?.is_some(),
    })
}

fn read_served_meal(row: &dyn Row) -> Result<ServedMeal, StoreError> {
    let via = match (row.opt_text(7)?, row.opt_text(8)?) {
        (Some(uid), None) => {
            MealVia::Card(CardUid::from_hex(&uid).map_err(|error| corrupt("card uid", error))?)
        }
        (None, Some(staff)) => {
            MealVia::Staff(StaffId::parse(&staff).map_err(|error| corrupt("staff", error))?)
        }
        _ => return Err(StoreError::Corrupt("a meal served two ways".to_owned())),
    };
    Ok(ServedMeal {
        device: DeviceId::parse(&row.text(0)?).map_err(|error| corrupt("device", error))?,
        seq: parse_seq(row.int(1)?)?,
        kiosk_at: parse_timestamp(row.int(2)?)?,
        service: ServiceId::parse(&row.text(3)?).map_err(|error| corrupt("service", error))?,
        meal_type: MealType::parse(&row.text(4)?).map_err(|error| corrupt("meal type", error))?,
        account: parse_account(&row.text(5)?)?,
        pupil: parse_pupil(&row.text(6)?)?,
        via,
        price: Cents::new(row.int(9)?),
    })
}

fn holder_columns(holder: &CardHolder) -> (&'static str, &str) {
    match holder {
        CardHolder::Pupil(pupil) => ("pupil", pupil.as_str()),
        CardHolder::Staff(staff) => ("staff", staff.as_str()),
    }
}

fn parse_holder(kind: &str, holder: &str) -> Result<CardHolder, StoreError> {
    match kind {
        "pupil" => parse_pupil(holder).map(CardHolder::Pupil),
        "staff" => StaffId::parse(holder)
            .map(CardHolder::Staff)
            .map_err(|error| corrupt("card holder", error)),
        other => Err(corrupt("card holder kind", other)),
    }
}

/// A `LIKE` pattern matching `text` anywhere, its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
