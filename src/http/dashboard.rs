//! The read-only web dashboard and the evidence export, behind `dashboard.token`: a login form
//! sets an HttpOnly, SameSite=Strict session cookie; tools send `Authorization: Bearer`. Pages
//! are rendered on the server (no external assets); `/metrics` is Prometheus text and public.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::{Datelike, Months, NaiveDate};
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::core::procedure::{ControlId, Email, ProcedureId};
use crate::core::reminders::ReviewSubject;
use crate::engine::library::Library;
use crate::evidence::{EvidencePack, render_csv, render_html, render_json, status_name};
use crate::html::{STYLE, escape, markdown, page};
use crate::scheduler::review_subjects;
use crate::store::Store;
use crate::store::evidence::AckProgress;

const COOKIE: &str = "procbot_session";
/// A login form holds one token: anything larger is refused (413) before it is parsed.
const LOGIN_BODY_LIMIT: usize = 4 * 1024;
/// A review due within this many days shows as "due".
const DUE_SOON_DAYS: i64 = 30;

pub struct Dashboard {
    pub token: SecretString,
    pub store: Store,
    pub library: Arc<Library>,
    pub clock: Arc<dyn Clock>,
    pub time_zone: chrono_tz::Tz,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

type Shared = Arc<Dashboard>;

/// The dashboard's routes, and `/metrics` (which needs no token).
pub fn routes(dashboard: Option<Shared>, metrics: Option<Arc<Metrics>>) -> Router {
    let mut router = Router::new();
    if let Some(metrics) = metrics {
        router = router.merge(
            Router::new()
                .route("/metrics", get(metrics_text))
                .with_state(metrics),
        );
    }
    let Some(dashboard) = dashboard else {
        return router;
    };
    router.merge(
        Router::new()
            .route("/", get(overview))
            .route(
                "/login",
                get(login_form)
                    .post(login)
                    .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
            )
            .route("/logout", get(logout))
            .route("/procedures/{id}", get(procedure_page))
            .route("/people", get(people))
            .route("/controls", get(controls))
            .route("/evidence", get(evidence))
            .route("/api/overview", get(overview_json))
            .route("/static/style.css", get(style))
            .with_state(dashboard),
    )
}

impl Dashboard {
    /// The session cookie's value: an HMAC of the token, so changing the token signs everyone
    /// out and the cookie never carries the token itself.
    fn session_value(&self) -> String {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(self.token.expose_secret().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"procbot dashboard session v1");
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn signed_in(&self, headers: &HeaderMap) -> bool {
        let expected = self.session_value();
        let by_cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| {
                name == COOKIE && bool::from(value.as_bytes().ct_eq(expected.as_bytes()))
            });
        let by_bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| {
                bool::from(
                    token
                        .trim()
                        .as_bytes()
                        .ct_eq(self.token.expose_secret().as_bytes()),
                )
            });
        by_cookie || by_bearer
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().with_timezone(&self.time_zone).date_naive()
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "dashboard request failed");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page(
            "Error",
            true,
            "<h1>Something went wrong</h1><p>The details are in procbot's log.</p>",
        ),
    )
}

/// Pages send people to the login form; the API and exports answer 401.
fn require(dashboard: &Dashboard, headers: &HeaderMap, api: bool) -> Option<Response> {
    if dashboard.signed_in(headers) {
        return None;
    }
    Some(if api {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "sign in, or send Authorization: Bearer <dashboard.token>\n",
        )
            .into_response()
    } else {
        Redirect::to("/login").into_response()
    })
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"bad\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        false,
        &format!(
            "<h1>Sign in</h1>{error}<form class=\"login\" method=\"post\" action=\"/login\"><p><label>Dashboard token<br><input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required></label></p><p><button type=\"submit\" id=\"sign-in\">Sign in</button></p></form>"
        ),
    )
}

async fn login_form() -> Response {
    html(StatusCode::OK, login_page(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(dashboard): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    let matches = bool::from(
        form.token
            .trim()
            .as_bytes()
            .ct_eq(dashboard.token.expose_secret().as_bytes()),
    );
    if !matches {
        return html(
            StatusCode::UNAUTHORIZED,
            login_page(Some("That token is not right.")),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=43200",
        dashboard.session_value()
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "procbot_session=; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=0",
        ),
    );
    response
}

/// One procedure's line on the overview.
struct Row {
    id: ProcedureId,
    title: String,
    version: Option<String>,
    owner: Option<String>,
    classification: String,
    review: Option<ReviewSubject>,
    progress: Option<AckProgress>,
}

async fn rows(dashboard: &Dashboard) -> Result<Vec<Row>, crate::store::StoreError> {
    procedure_rows(&dashboard.store, &dashboard.library, dashboard.time_zone).await
}

async fn procedure_rows(
    store: &Store,
    library: &Library,
    time_zone: chrono_tz::Tz,
) -> Result<Vec<Row>, crate::store::StoreError> {
    let Some(served) = library.current() else {
        return Ok(Vec::new());
    };
    let history = store.review_history().await?;
    let mut reviews = review_subjects(&served.snapshot, &history, time_zone);
    let mut progress = store.requirement_progress(None).await?;
    let rows = served
        .snapshot
        .procedures
        .iter()
        .map(|(id, entry)| {
            let procedure = &entry.procedure;
            Row {
                id: id.clone(),
                title: procedure.title.clone(),
                version: procedure.version.as_ref().map(ToString::to_string),
                owner: procedure.owner.as_ref().map(ToString::to_string),
                classification: procedure.classification.to_string(),
                review: reviews.remove(id),
                progress: progress.remove(id.as_str()),
            }
        })
        .collect();
    Ok(rows)
}

fn review_state(review: Option<&ReviewSubject>, today: NaiveDate) -> (&'static str, String) {
    match review {
        None => ("muted", "no review date".to_string()),
        Some(r) if r.due < today => ("overdue", format!("overdue since {}", r.due)),
        Some(r) if (r.due - today).num_days() <= DUE_SOON_DAYS => ("due", format!("due {}", r.due)),
        Some(r) => ("ok", format!("ok, next {}", r.due)),
    }
}

fn coverage_text(progress: Option<&AckProgress>) -> String {
    match progress {
        Some(p) if p.required > 0 => format!(
            "{}% ({}/{})",
            p.acknowledged * 100 / p.required,
            p.acknowledged,
            p.required
        ),
        _ => "—".to_string(),
    }
}

/// An inline SVG: overall coverage as a bar, and reviews falling due per month over the next
/// twelve months.
fn chart(rows: &[Row], today: NaiveDate) -> String {
    let (required, acknowledged) = rows
        .iter()
        .filter_map(|r| r.progress.as_ref())
        .fold((0, 0), |(r, a), p| (r + p.required, a + p.acknowledged));
    let percent = if required == 0 {
        100
    } else {
        acknowledged * 100 / required
    };
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let months: Vec<NaiveDate> = (0..12)
        .filter_map(|n| first.checked_add_months(Months::new(n)))
        .collect();
    let counts: Vec<usize> = months
        .iter()
        .map(|month| {
            rows.iter()
                .filter_map(|r| r.review.as_ref())
                .filter(|r| r.due.year() == month.year() && r.due.month() == month.month())
                .count()
        })
        .collect();
    let overdue = rows
        .iter()
        .filter_map(|r| r.review.as_ref())
        .filter(|r| r.due < today)
        .count();
    let highest = counts
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(overdue)
        .max(1);
    let mut svg = format!(
        "<svg id=\"chart\" role=\"img\" aria-label=\"Acknowledgement coverage {percent}% and reviews due per month\" viewBox=\"0 0 640 210\" width=\"640\" height=\"210\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\" font-family=\"sans-serif\">\
         <text x=\"0\" y=\"14\">Acknowledgement coverage of current versions: {percent}% ({acknowledged} of {required})</text>\
         <rect x=\"0\" y=\"22\" width=\"600\" height=\"14\" fill=\"#e7ebf2\"/><rect x=\"0\" y=\"22\" width=\"{}\" height=\"14\" fill=\"#1f7a4d\"/>\
         <text x=\"0\" y=\"62\">Reviews due per month (first bar: already overdue)</text>",
        percent * 6
    );
    let bars = std::iter::once(("late".to_string(), overdue, "#b42318")).chain(
        months
            .iter()
            .zip(&counts)
            .map(|(m, c)| (m.format("%b").to_string(), *c, "#2f5bd3")),
    );
    for (index, (label, count, colour)) in bars.enumerate() {
        let height = count * 110 / highest;
        let x = index * 48;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"34\" height=\"{height}\" fill=\"{colour}\"><title>{label}: {count}</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{count}</text><text x=\"{}\" y=\"205\" text-anchor=\"middle\">{label}</text>",
            190 - height,
            x + 17,
            185 - height,
            x + 17
        ));
    }
    svg.push_str("</svg>");
    svg
}

async fn overview(State(dashboard): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = require(&dashboard, &headers, false) {
        return refused;
    }
    let rows = match rows(&dashboard).await {
        Ok(rows) => rows,
        Err(error) => return internal(error),
    };
    let today = dashboard.today();
    let mut body = format!(
        "<h1>Procedures</h1><p class=\"muted\">{} procedures served, as of {today}.</p>{}",
        rows.len(),
        chart(&rows, today)
    );
    body.push_str("<table id=\"procedures\"><tr><th>Procedure</th><th>Version</th><th>Owner</th><th>Classification</th><th>Review</th><th>Acknowledged</th></tr>");
    for row in &rows {
        let (class, review) = review_state(row.review.as_ref(), today);
        body.push_str(&format!(
            "<tr><td><a href=\"/procedures/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape(row.id.as_str()),
            escape(&row.title),
            escape(row.version.as_deref().unwrap_or("")),
            escape(row.owner.as_deref().unwrap_or("")),
            escape(&row.classification),
            escape(&review),
            escape(&coverage_text(row.progress.as_ref()))
        ));
    }
    body.push_str("</table>");
    html(StatusCode::OK, page("Overview", true, &body))
}

async fn overview_json(State(dashboard): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = require(&dashboard, &headers, true) {
        return refused;
    }
    let rows = match rows(&dashboard).await {
        Ok(rows) => rows,
        Err(error) => return internal(error),
    };
    let today = dashboard.today();
    let procedures: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "id": row.id.as_str(),
                "title": row.title,
                "version": row.version,
                "owner": row.owner,
                "classification": row.classification,
                "review_due": row.review.as_ref().map(|r| r.due.to_string()),
                "review_state": review_state(row.review.as_ref(), today).0,
                "required": row.progress.as_ref().map_or(0, |p| p.required),
                "acknowledged": row.progress.as_ref().map_or(0, |p| p.acknowledged),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "as_of": today.to_string(), "procedures": procedures }))
        .into_response()
}

async fn procedure_page(
    State(dashboard): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = require(&dashboard, &headers, false) {
        return refused;
    }
    let not_found = || {
        html(
            StatusCode::NOT_FOUND,
            page(
                "Not found",
                true,
                &format!(
                    "<h1>No procedure {}</h1><p><a href=\"/\">All procedures</a></p>",
                    escape(&id)
                ),
            ),
        )
    };
    let Ok(procedure_id) = ProcedureId::parse(&id) else {
        return not_found();
    };
    let Some(served) = dashboard.library.current() else {
        return not_found();
    };
    let Some(entry) = served.snapshot.get(&procedure_id) else {
        return not_found();
    };
    let procedure = &entry.procedure;
    let gathered = async {
        let report = dashboard.store.acknowledgement_report().await?;
        let versions = dashboard.store.stored_versions().await?;
        let reviews = dashboard.store.review_history().await?;
        let lookups = dashboard.store.lookups_mentioning(id.as_str(), 20).await?;
        let runs = dashboard.store.runs(Some(id.as_str())).await?;
        Ok::<_, crate::store::StoreError>((report, versions, reviews, lookups, runs))
    };
    let (report, versions, reviews, lookups, runs) = match gathered.await {
        Ok(all) => all,
        Err(error) => return internal(error),
    };
    let mut body = format!(
        "<h1>{}</h1><p class=\"muted\">{} · v{} · owner {} · {} · <span class=\"hash\">{}</span></p>",
        escape(&procedure.title),
        escape(procedure.id.as_str()),
        escape(
            &procedure
                .version
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        escape(
            &procedure
                .owner
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        escape(&procedure.classification.to_string()),
        escape(&entry.content_hash.to_hex())
    );
    let controls: Vec<String> = procedure.controls.iter().map(ToString::to_string).collect();
    body.push_str(&format!(
        "<p><strong>Controls</strong>: {}</p>",
        if controls.is_empty() {
            "none".to_string()
        } else {
            controls
                .iter()
                .map(|c| format!("<a href=\"/controls#{0}\">{0}</a>", escape(c)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    if !procedure.frameworks.is_empty() {
        let frameworks: Vec<String> = procedure
            .frameworks
            .iter()
            .map(|(name, clauses)| format!("{}: {}", escape(name), escape(&clauses.join(", "))))
            .collect();
        body.push_str(&format!(
            "<p><strong>Frameworks</strong>: {}</p>",
            frameworks.join("; ")
        ));
    }
    body.push_str(&format!(
        "<div class=\"procedure-body\">{}</div>",
        markdown(&procedure.body)
    ));
    body.push_str("<h2>Versions</h2><table><tr><th>Version</th><th>Content</th><th>Commit</th><th>Author</th><th>Date</th></tr>");
    for version in versions.iter().filter(|v| v.procedure_id == id) {
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"hash\">{}</td><td class=\"hash\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(version.version.as_deref().unwrap_or("")),
            escape(version.content_hash.get(..12).unwrap_or(&version.content_hash)),
            escape(version.commit_id.as_deref().map(|c| c.get(..12).unwrap_or(c)).unwrap_or("")),
            escape(version.commit_author.as_deref().unwrap_or("")),
            version.committed_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
        ));
    }
    body.push_str("</table>");
    for version in report.iter().filter(|v| v.procedure_id == id) {
        body.push_str(&format!(
            "<h2>Acknowledgements of {} <span class=\"muted\">({})</span></h2><table><tr><th>Person</th><th>State</th><th>When</th><th>Where</th></tr>",
            escape(&version.version.as_deref().map(|v| format!("v{v}")).unwrap_or_else(|| "this version".into())),
            status_name(version.status)
        ));
        for person in &version.people {
            let (class, state) = match (person.acknowledged_at, person.required) {
                (Some(_), true) => ("ok", "acknowledged"),
                (Some(_), false) => ("muted", "voluntary read"),
                (None, _) => ("pending", "pending"),
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"{class}\">{state}</td><td>{}</td><td>{}</td></tr>",
                escape(&person.email),
                person
                    .acknowledged_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                escape(person.platform.as_deref().unwrap_or(""))
            ));
        }
        body.push_str("</table>");
    }
    let answers = reviews.get(&id).cloned().unwrap_or_default();
    body.push_str("<h2>Reviews</h2>");
    if answers.is_empty() {
        body.push_str(&format!(
            "<p class=\"muted\">None recorded through procbot; the file says last reviewed {}.</p>",
            procedure
                .last_reviewed
                .map(|d| d.to_string())
                .unwrap_or_else(|| "never".into())
        ));
    } else {
        body.push_str("<table><tr><th>Answer</th><th>By</th><th>When</th></tr>");
        for review in &answers {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&review.outcome),
                escape(&review.email),
                review.reviewed_at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        body.push_str("</table>");
    }
    if runs.is_empty() {
        body.push_str("<h2>Procedure runs</h2><p class=\"muted\">No runs recorded yet.</p>");
    } else {
        let now = dashboard.clock.now();
        let records: Vec<crate::evidence::RunRecord> = runs
            .iter()
            .map(|run| crate::evidence::RunRecord::of(run, now))
            .collect();
        body.push_str(&crate::evidence::render_runs_html(&records));
    }
    body.push_str(&format!(
        "<h2>Lookups that showed it</h2><p>{} recent.</p>",
        lookups.len()
    ));
    if !lookups.is_empty() {
        body.push_str("<table><tr><th>When</th><th>Who</th><th>Question</th></tr>");
        for lookup in &lookups {
            let question = serde_json::from_str::<serde_json::Value>(&lookup.payload)
                .ok()
                .and_then(|v| v["query"].as_str().map(str::to_string))
                .unwrap_or_default();
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                lookup.recorded_at.format("%Y-%m-%d %H:%M UTC"),
                escape(&lookup.subject),
                escape(&question)
            ));
        }
        body.push_str("</table>");
    }
    html(StatusCode::OK, page(&procedure.title, true, &body))
}

async fn people(State(dashboard): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = require(&dashboard, &headers, false) {
        return refused;
    }
    let pending = match dashboard.store.all_pending().await {
        Ok(pending) => pending,
        Err(error) => return internal(error),
    };
    let served = dashboard.library.current();
    let directory = served
        .as_ref()
        .and_then(|s| s.snapshot.directory.clone())
        .unwrap_or_default();
    let mut body = String::from(
        "<h1>People</h1><table id=\"people\"><tr><th>Person</th><th>Pending acknowledgements</th></tr>",
    );
    let mut everyone: BTreeSet<String> = directory
        .everyone()
        .iter()
        .map(ToString::to_string)
        .collect();
    everyone.extend(pending.keys().cloned());
    for email in everyone {
        let items = pending.get(&email).cloned().unwrap_or_default();
        let name = Email::parse(&email)
            .ok()
            .and_then(|e| directory.person(&e).map(|p| p.display_name().to_string()))
            .unwrap_or_else(|| email.clone());
        let list = if items.is_empty() {
            "<span class=\"ok\">none</span>".to_string()
        } else {
            items
                .iter()
                .map(|item| {
                    format!(
                        "<a href=\"/procedures/{0}\">{0}</a> {1} <span class=\"muted\">since {2}</span>",
                        escape(&item.procedure_id),
                        escape(&item.version.as_deref().map(|v| format!("v{v}")).unwrap_or_default()),
                        item.required_since.format("%Y-%m-%d")
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        body.push_str(&format!(
            "<tr><td>{} <span class=\"muted\">{}</span></td><td>{list}</td></tr>",
            escape(&name),
            escape(&email)
        ));
    }
    body.push_str("</table>");
    html(StatusCode::OK, page("People", true, &body))
}

async fn controls(State(dashboard): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = require(&dashboard, &headers, false) {
        return refused;
    }
    let mut covered: BTreeMap<ControlId, Vec<(ProcedureId, String)>> = BTreeMap::new();
    if let Some(served) = dashboard.library.current() {
        for (id, entry) in &served.snapshot.procedures {
            for control in &entry.procedure.controls {
                covered
                    .entry(control.clone())
                    .or_default()
                    .push((id.clone(), entry.procedure.title.clone()));
            }
        }
    }
    let all = ControlId::all();
    let uncovered = all.iter().filter(|c| !covered.contains_key(c)).count();
    let mut body = format!(
        "<h1>Annex A controls</h1><p>{} of {} controls have a procedure; {uncovered} have none.</p><table id=\"controls\"><tr><th>Control</th><th>Procedures</th></tr>",
        all.len() - uncovered,
        all.len()
    );
    for control in all {
        let cell = match covered.get(&control) {
            Some(procedures) => procedures
                .iter()
                .map(|(id, title)| {
                    format!(
                        "<a href=\"/procedures/{}\">{}</a>",
                        escape(id.as_str()),
                        escape(title)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
            None => "<span class=\"muted\">none</span>".to_string(),
        };
        body.push_str(&format!(
            "<tr id=\"{0}\"><td>{0}</td><td>{cell}</td></tr>",
            escape(&control.to_string())
        ));
    }
    body.push_str("</table>");
    html(StatusCode::OK, page("Controls", true, &body))
}

#[derive(Deserialize)]
struct EvidenceQuery {
    format: Option<String>,
}

async fn evidence(
    State(dashboard): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<EvidenceQuery>,
) -> Response {
    if let Some(refused) = require(&dashboard, &headers, true) {
        return refused;
    }
    let format = query.format.unwrap_or_else(|| "html".to_string());
    let now = dashboard.clock.now();
    match format.as_str() {
        "csv" => match dashboard.store.acknowledgement_report().await {
            Ok(versions) => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"procbot-evidence.csv\"",
                    ),
                ],
                render_csv(&versions),
            )
                .into_response(),
            Err(error) => internal(error),
        },
        "json" | "html" => match EvidencePack::gather(&dashboard.store, now).await {
            Ok(pack) if format == "json" => (
                [(header::CONTENT_TYPE, "application/json")],
                render_json(&pack),
            )
                .into_response(),
            Ok(pack) => html(StatusCode::OK, render_html(&pack, true)),
            Err(error) => internal(error),
        },
        other => (
            StatusCode::BAD_REQUEST,
            format!(
                "format `{}` is not one of csv, json, html\n",
                other.chars().take(20).collect::<String>()
            ),
        )
            .into_response(),
    }
}

/// What `/metrics` reads.
pub struct Metrics {
    pub store: Store,
    pub library: Arc<Library>,
    pub clock: Arc<dyn Clock>,
    pub time_zone: chrono_tz::Tz,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let gathered = async {
        let outbox = metrics.store.outbox_counts().await?;
        let oldest = metrics.store.oldest_pending().await?;
        let ledger = metrics.store.ledger_counts().await?;
        let rows = procedure_rows(&metrics.store, &metrics.library, metrics.time_zone).await?;
        Ok::<_, crate::store::StoreError>((outbox, oldest, ledger, rows))
    };
    let (outbox, oldest, ledger, rows) = match gathered.await {
        Ok(all) => all,
        Err(error) => {
            tracing::warn!(%error, "metrics: the database does not answer");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response();
        }
    };
    let now = metrics.clock.now();
    let served = metrics.library.current();
    let mut text = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            text.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "procbot_syncs_total",
        "counter",
        "Repository syncs attempted.",
        vec![(
            String::new(),
            crate::repo::sync::SYNCS_TOTAL.load(Relaxed).to_string(),
        )],
    );
    metric(
        "procbot_sync_failures_total",
        "counter",
        "Repository syncs that failed.",
        vec![(
            String::new(),
            crate::repo::sync::SYNC_FAILURES_TOTAL
                .load(Relaxed)
                .to_string(),
        )],
    );
    metric(
        "procbot_changes_total",
        "counter",
        "Procedure changes detected by syncs.",
        vec![(
            String::new(),
            crate::repo::sync::CHANGES_TOTAL.load(Relaxed).to_string(),
        )],
    );
    metric(
        "procbot_procedures",
        "gauge",
        "Procedures served.",
        vec![(
            String::new(),
            served
                .as_ref()
                .map_or(0, |s| s.snapshot.procedures.len())
                .to_string(),
        )],
    );
    metric(
        "procbot_outbox_messages",
        "gauge",
        "Outbound messages by state.",
        vec![
            ("{state=\"pending\"}".into(), outbox.pending.to_string()),
            ("{state=\"delivered\"}".into(), outbox.delivered.to_string()),
            ("{state=\"failed\"}".into(), outbox.failed.to_string()),
        ],
    );
    metric(
        "procbot_outbox_oldest_pending_seconds",
        "gauge",
        "Age of the oldest message still waiting (0 when none).",
        vec![(
            String::new(),
            oldest
                .map(|at| (now - at).num_seconds().max(0))
                .unwrap_or(0)
                .to_string(),
        )],
    );
    metric(
        "procbot_ledger_entries",
        "gauge",
        "Evidence ledger entries by kind (acknowledgements, reviews, announcements, lookups).",
        ["announcement", "acknowledgement", "review", "lookup"]
            .iter()
            .map(|kind| {
                (
                    format!("{{kind=\"{kind}\"}}"),
                    ledger.get(*kind).copied().unwrap_or(0).to_string(),
                )
            })
            .collect(),
    );
    let today = now.with_timezone(&metrics.time_zone).date_naive();
    let mut states: BTreeMap<&str, usize> = ["ok", "due", "overdue", "muted"]
        .into_iter()
        .map(|state| (state, 0))
        .collect();
    for row in &rows {
        *states
            .entry(review_state(row.review.as_ref(), today).0)
            .or_default() += 1;
    }
    metric(
        "procbot_reviews",
        "gauge",
        "Procedures by review state (none: no review date).",
        states
            .iter()
            .map(|(state, count)| {
                let state = if *state == "muted" { "none" } else { state };
                (format!("{{state=\"{state}\"}}"), count.to_string())
            })
            .collect(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
