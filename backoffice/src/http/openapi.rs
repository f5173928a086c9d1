//! The OpenAPI 3.1 document of the API, written by hand next to the routes it describes; a test
//! checks that every routed endpoint appears in it.

use axum::response::Json;
use serde_json::{Value, json};

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(openapi())
}

pub fn openapi() -> Value {
    let signed_request = json!([
        {"name": proto::api::HEADER_DEVICE, "in": "header", "required": true,
         "schema": {"type": "string"}, "description": "The kiosk's device id."},
        {"name": proto::api::HEADER_TIMESTAMP, "in": "header", "required": true,
         "schema": {"type": "string", "format": "date-time"},
         "description": "RFC 3339 UTC with milliseconds; within 5 minutes of the server's clock."},
        {"name": proto::api::HEADER_NONCE, "in": "header", "required": true,
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9]{16,64}$"},
         "description": "Unique per request of this kiosk; a nonce seen before is refused."},
        {"name": proto::api::HEADER_SIGNATURE, "in": "header", "required": true,
         "schema": {"type": "string", "format": "byte"},
         "description": "Base64 Ed25519 signature of proto::api::RequestToSign::signing_bytes: \
                         canteen-request-v1, device, method, path and query, timestamp, nonce \
                         and the body's SHA-256, one a line."},
    ]);
    let errors = json!({
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
        "413": {"$ref": "#/components/responses/Error"},
        "503": {"$ref": "#/components/responses/Error"},
    });
    let mut upload_responses = errors.clone();
    upload_responses["200"] = json!({
        "description": "What was stored, the highest contiguous seq held, and the server's time.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadResponse"}}},
    });
    let mut snapshot_parameters = signed_request.clone();
    if let Some(parameters) = snapshot_parameters.as_array_mut() {
        parameters.push(json!({
            "name": "since", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 0},
            "description": "The version the kiosk holds; omit for a full snapshot.",
        }));
    }
    let mut snapshot_responses = errors.clone();
    snapshot_responses["200"] = json!({
        "description": "proto::snapshot::Snapshot: `since` is set for a delta only.",
        "content": {"application/json": {"schema": {"type": "object",
            "required": ["version", "site", "accounts", "pupils", "cards", "hotlist",
                         "tariffs", "services", "staff"]}}},
    });
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Canteen back-office",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Kiosk sync and monitoring. Every error answers with an ApiError body.",
        },
        "paths": {
            "/healthz": {"get": {
                "summary": "Whether this instance and its database answer.",
                "responses": {
                    "200": {"description": "ok", "content": {"text/plain": {}}},
                    "503": {"$ref": "#/components/responses/Error"},
                },
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics: requests, latencies, records ingested, refusals \
                            by reason, per-kiosk last seen.",
                "responses": {"200": {"description": "Prometheus text format",
                                      "content": {"text/plain": {}}}},
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {}}}},
            }},
            super::kiosk::SNAPSHOT_PATH: {"get": {
                "summary": "A kiosk fetches its site's snapshot: accounts with balances, pupils, \
                            cards, the city-wide hotlist, tariffs, services, staff credentials \
                            (Argon2 PIN hashes) and kiosk settings. Without `since`, everything; \
                            with `since=V`, what changed after version V (blocked cards listed \
                            under `removed`). A `since` newer than the server's version gets a \
                            full snapshot.",
                "parameters": snapshot_parameters,
                "responses": snapshot_responses,
            }},
            super::kiosk::RECORDS_PATH: {"post": {
                "summary": "A kiosk uploads a batch of its signed records (at most 500, body at \
                            most 4 MiB) with its report of itself. Each record is stored once; \
                            re-uploads count as duplicates; forks and forged records are \
                            quarantined; records after a gap are held until it fills.",
                "parameters": signed_request,
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/UploadRequest"}}}},
                "responses": upload_responses,
            }},
        },
        "components": {
            "responses": {"Error": {
                "description": "A refused or failed request.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
            }},
            "schemas": {
                "ApiError": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": [
                        "bad_request", "batch_too_large", "body_too_large", "unauthenticated",
                        "replayed", "forbidden", "not_found", "conflict", "unavailable"]},
                    "message": {"type": "string"},
                }},
                "SignedRecord": {"type": "object", "required": ["payload", "signature"], "properties": {
                    "payload": {"type": "string", "description": "The exact signed UTF-8 JSON."},
                    "signature": {"type": "string", "format": "byte"},
                }},
                "KioskReport": {"type": "object",
                    "required": ["software_version", "reader", "unsynced_records", "kiosk_time"],
                    "properties": {
                        "software_version": {"type": "string"},
                        "reader": {"type": "string", "enum": ["ready", "unavailable"]},
                        "unsynced_records": {"type": "integer", "minimum": 0},
                        "kiosk_time": {"type": "string", "format": "date-time"},
                        "snapshot_version": {"type": "integer", "minimum": 0},
                    }},
                "UploadRequest": {"type": "object", "required": ["records", "status"], "properties": {
                    "records": {"type": "array", "maxItems": proto::limits::UPLOAD_BATCH_RECORDS_MAX,
                                "items": {"$ref": "#/components/schemas/SignedRecord"}},
                    "status": {"$ref": "#/components/schemas/KioskReport"},
                }},
                "UploadResponse": {"type": "object",
                    "required": ["stored", "duplicates", "quarantined", "backoffice_time"],
                    "properties": {
                        "acknowledged": {"type": "integer", "minimum": 1},
                        "stored": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                        "quarantined": {"type": "integer", "minimum": 0},
                        "backoffice_time": {"type": "string", "format": "date-time"},
                    }},
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
    });
    let Some(paths) = document["paths"].as_object_mut() else {
        return document;
    };
    for (method, path, summary, roles, request) in USER_ENDPOINTS {
        let mut operation = json!({
            "summary": summary,
            "description": format!("Roles: {roles}. Staff act only within their own site."),
            "security": [{"basic": []}],
            "responses": {
                "200": {"description": "Done; changes answer with the snapshot version they made.",
                        "content": {"application/json": {}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"},
            },
        });
        if let Some(request) = request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"type": "object", "description": request}}}});
        }
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    for (method, path, summary, roles, request) in FINANCE_ENDPOINTS {
        let mut operation = json!({
            "summary": summary,
            "description": format!("Roles: {roles}."),
            "security": [{"basic": []}],
            "responses": {
                "200": {"description": "Done. Reconciliations answer {date, site, run_at, \
                    run_by, signed_off_by, signed_off_at, report}; the report lists kiosks, \
                    sites, meals by site/meal type/bracket, revenue, top-ups by source and \
                    method, the balance check and findings {kind, site, device, seq, detail, \
                    action, evidence}. Exports answer CSV, FEC text or JSON Lines.",
                        "content": {"application/json": {}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"},
                "503": {"$ref": "#/components/responses/Error"},
            },
        });
        if let Some(request) = request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"type": "object", "description": request}}}});
        }
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    document
}

/// Finance's endpoints: method, path, summary, roles, and the request body if any.
const FINANCE_ENDPOINTS: [(&str, &str, &str, &str, Option<&str>); 7] = [
    (
        "post",
        "/api/v1/reconciliations",
        "Runs and stores the reconciliation of a service day, for all sites or one; refused \
         (422) once that day is signed off.",
        "finance, admin",
        Some("{date: YYYY-MM-DD, site?: id}"),
    ),
    (
        "get",
        "/api/v1/reconciliations/{date}",
        "The stored reconciliation of a day; query `site` for one site's.",
        "finance, admin",
        None,
    ),
    (
        "post",
        "/api/v1/reconciliations/{date}/sign-off",
        "Signs the day off (query `site` for one site's): immutable from then on. Refused \
         while a proposed void of the day is pending.",
        "finance",
        None,
    ),
    (
        "get",
        "/api/v1/proposed-voids",
        "Voids proposed by reconciliations for duplicate meals; query `date` for one day's.",
        "finance, admin",
        None,
    ),
    (
        "post",
        "/api/v1/proposed-voids/{id}/approve",
        "Approves a proposed void: the meal's price is credited back to the account by an \
         adjustment dated at the start of the next day not signed off.",
        "finance",
        None,
    ),
    (
        "post",
        "/api/v1/proposed-voids/{id}/reject",
        "Rejects a proposed void: nothing moves.",
        "finance",
        None,
    ),
    (
        "get",
        "/api/v1/exports/{kind}",
        "An export of days `from` to `to` (default `from`), all sites or query `site`: kind \
         meals, top-ups or summary (CSV), journal (FEC, tab-separated) or records (JSON \
         Lines of the audit format, each kiosk's PEM key first).",
        "finance, admin",
        None,
    ),
];

/// The users' endpoints: method, path, summary, roles, and the request body if any.
const USER_ENDPOINTS: [(&str, &str, &str, &str, Option<&str>); 15] = [
    (
        "get",
        "/api/v1/accounts/{account}",
        "An account's balance and overdraft floor.",
        "staff, finance, admin",
        None,
    ),
    (
        "put",
        "/api/v1/accounts/{account}",
        "Opens an account with a zero balance.",
        "staff, admin",
        Some("{overdraft_floor: cents, -5000..=0}"),
    ),
    (
        "post",
        "/api/v1/accounts/{account}/top-ups",
        "Money paid in at the back-office counter.",
        "staff, admin",
        Some("{amount: cents 1..=500000, method: cash|cheque, reference?: text}"),
    ),
    (
        "post",
        "/api/v1/accounts/{account}/adjustments",
        "A correction, with its reason.",
        "finance, admin",
        Some("{amount: cents, nonzero, within ±500000, reason: text}"),
    ),
    (
        "post",
        "/api/v1/payments",
        "Credits an online payment, once per provider reference: a retry answers replayed.",
        "payments, admin",
        Some("{reference: text, account: id, amount: cents 1..=100000}"),
    ),
    (
        "put",
        "/api/v1/pupils/{pupil}",
        "Creates or edits a pupil of a site.",
        "staff, admin",
        Some("{site: id, pupil: proto::snapshot::Pupil}"),
    ),
    (
        "post",
        "/api/v1/cards",
        "Binds a new card to a pupil or staff member.",
        "staff, admin",
        Some("proto::snapshot::Card {uid: hex, holder: {pupil: id}|{staff: id}}"),
    ),
    (
        "post",
        "/api/v1/cards/{uid}/block",
        "Blocks a lost card: on every kiosk's hotlist.",
        "staff, admin",
        None,
    ),
    (
        "post",
        "/api/v1/cards/{uid}/replace",
        "Blocks a card and binds a new one to its holder; the balance stays with the account.",
        "staff, admin",
        Some("{new_uid: hex}"),
    ),
    (
        "put",
        "/api/v1/sites/{site}/tariffs",
        "One bracket's price for one meal type.",
        "admin",
        Some("proto::snapshot::Tariff {bracket, meal_type, price: cents 0..=10000}"),
    ),
    (
        "put",
        "/api/v1/sites/{site}/services/{service}",
        "A meal window of the site.",
        "admin",
        Some("proto::snapshot::Service"),
    ),
    (
        "put",
        "/api/v1/sites/{site}/staff/{staff}",
        "A staff member and their kiosk PIN (kept only as an Argon2 hash).",
        "admin",
        Some("{name: text, pin: 4 to 8 digits}"),
    ),
    (
        "put",
        "/api/v1/sites/{site}/settings",
        "The site's kiosk settings.",
        "admin",
        Some("proto::snapshot::KioskSettings"),
    ),
    (
        "get",
        "/api/v1/anomalies",
        "Quarantined records, records that moved no money, and open gaps.",
        "finance, admin",
        None,
    ),
    (
        "get",
        "/api/v1/kiosks",
        "Each kiosk's last report: last seen, version, unsynced, reader.",
        "finance, admin",
        None,
    ),
];
