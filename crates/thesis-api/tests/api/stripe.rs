//! Billing through Stripe, against a local Stripe double (wiremock) that records every request,
//! with webhook signatures made by the official `stripe` Python package.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::*;

const KEY: &str = "sk_test_thesis";
const SECRET: &str = "whsec_current";
const OLD_SECRET: &str = "whsec_previous";

fn form(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn requests(server: &MockServer, m: &str, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A subscription as the Stripe API (2025+) returns it: the period lives on its items.
fn subscription(id: &str, status: &str, cancel: bool, start: i64, end: i64, org: &str) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": "cus_test", "status": status,
        "cancel_at_period_end": cancel,
        "items": {"object": "list", "data": [{
            "id": "si_1", "object": "subscription_item",
            "current_period_start": start, "current_period_end": end,
            "price": {"id": "price_usage"}
        }]},
        "metadata": {"organization_id": org}
    })
}

struct Stripe {
    server: MockServer,
    app: TestApp,
    owner: TestUser,
    root: TestUser,
    org_id: String,
}

async fn setup() -> Stripe {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_test", "object": "customer"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.test/c/cs_test_1"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "bps_1", "object": "billing_portal.session", "url": "https://billing.stripe.test/p/1"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/meter_events"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "billing.meter_event"})),
        )
        .mount(&server)
        .await;
    let secrets = format!("{OLD_SECRET},{SECRET}");
    let app = TestApp::spawn_with(&[
        ("THESIS_STRIPE_SECRET_KEY", KEY),
        ("THESIS_STRIPE_API_URL", &server.uri()),
        ("THESIS_STRIPE_PRICE_ID", "price_usage"),
        ("THESIS_STRIPE_WEBHOOK_SECRET", &secrets),
        ("THESIS_ADMIN_EMAILS", "root@example.com"),
    ])
    .await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let root = app.signup("root@example.com").await;
    Stripe {
        server,
        app,
        owner,
        root,
        org_id: org["id"].as_str().unwrap().to_string(),
    }
}

/// The current subscription the double answers with.
async fn serve_subscription(s: &Stripe, sub: Value) {
    let id = sub["id"].as_str().unwrap().to_string();
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(sub))
        .mount(&s.server)
        .await;
}

/// `stripe.WebhookSignature.generate_signature_header` from the official Python package.
fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import stripe, sys; print(stripe.WebhookSignature.generate_signature_header(sys.argv[1], sys.argv[2], int(sys.argv[3])))",
            payload,
            secret,
            &timestamp.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn deliver(app: &TestApp, payload: &str, signature: Option<&str>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .header("content-type", "application/json")
        .body(payload.to_string());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn deliver_signed(app: &TestApp, event: &Value) -> (StatusCode, Value) {
    let payload = event.to_string();
    let sig = sign(&payload, SECRET, Utc::now().timestamp());
    deliver(app, &payload, Some(&sig)).await
}

fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": Utc::now().timestamp(),
           "api_version": "2025-03-31.basil", "data": {"object": object}})
}

async fn billing(s: &Stripe) -> Value {
    s.app
        .get("/v1/organization/billing", Some(&s.owner.token))
        .await
        .1
}

/// Subscribes the organization: checkout completed, subscription active for `[start, end)`.
async fn subscribe(s: &Stripe, start: i64, end: i64) {
    serve_subscription(
        s,
        subscription("sub_1", "active", false, start, end, &s.org_id),
    )
    .await;
    let completed = event(
        "evt_checkout",
        "checkout.session.completed",
        json!({"id": "cs_test_1", "object": "checkout.session", "client_reference_id": s.org_id,
               "customer": "cus_test", "subscription": "sub_1", "mode": "subscription"}),
    );
    let (status, body) = deliver_signed(&s.app, &completed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn period() -> (i64, i64) {
    let start = (Utc::now() - Duration::days(3)).timestamp();
    (start, start + 30 * 86400)
}

#[tokio::test]
async fn checkout_creates_the_customer_and_a_session_with_the_exact_requests() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (status, body) = s
        .app
        .post(
            "/v1/organization/billing/checkout",
            Some(&s.owner.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["billingMode"], "stripe");
    assert_eq!(
        body["plan"], "free",
        "the plan changes when Stripe confirms payment"
    );
    assert_eq!(
        body["checkoutUrl"],
        "https://checkout.stripe.test/c/cs_test_1"
    );
    assert_eq!(body["checkoutSessionId"], "cs_test_1");

    let customers = requests(&s.server, "POST", "/v1/customers").await;
    assert_eq!(customers.len(), 1);
    assert_eq!(
        form(&customers[0]),
        pairs(&[
            ("name", "Acme"),
            ("email", "billing@example.com"),
            ("metadata[organization_id]", &s.org_id)
        ])
    );
    assert_eq!(
        header(&customers[0], "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        header(&customers[0], "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header(&customers[0], "idempotency-key"),
        Some(format!("customer-{}", s.org_id).as_str())
    );

    let sessions = requests(&s.server, "POST", "/v1/checkout/sessions").await;
    assert_eq!(sessions.len(), 1);
    let success = format!("{}/billing?checkout=success", s.app.base);
    let cancel = format!("{}/billing?checkout=cancel", s.app.base);
    assert_eq!(
        form(&sessions[0]),
        pairs(&[
            ("mode", "subscription"),
            ("customer", "cus_test"),
            ("client_reference_id", &s.org_id),
            ("line_items[0][price]", "price_usage"),
            ("success_url", &success),
            ("cancel_url", &cancel),
            ("subscription_data[metadata][organization_id]", &s.org_id),
            ("metadata[organization_id]", &s.org_id),
        ])
    );
    assert!(
        header(&sessions[0], "idempotency-key")
            .unwrap()
            .starts_with("checkout-")
    );

    // the customer is created once
    s.app
        .post(
            "/v1/organization/billing/checkout",
            Some(&s.owner.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    assert_eq!(requests(&s.server, "POST", "/v1/customers").await.len(), 1);

    // the portal uses that customer
    let (status, portal) = s
        .app
        .call(
            Method::POST,
            "/v1/organization/billing/portal",
            Some(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{portal}");
    assert_eq!(portal["url"], "https://billing.stripe.test/p/1");
    let portals = requests(&s.server, "POST", "/v1/billing_portal/sessions").await;
    assert_eq!(
        form(&portals[0]),
        pairs(&[
            ("customer", "cus_test"),
            ("return_url", &format!("{}/billing", s.app.base))
        ])
    );
}

#[tokio::test]
async fn portal_without_a_customer_is_409_and_stripe_failures_are_502() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (status, body) = s
        .app
        .call(
            Method::POST,
            "/v1/organization/billing/portal",
            Some(&s.owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    s.server.reset().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(402)
                .set_body_json(json!({"error": {"message": "Your card was declined."}})),
        )
        .mount(&s.server)
        .await;
    let (status, body) = s
        .app
        .post(
            "/v1/organization/billing/checkout",
            Some(&s.owner.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("declined"), "{message}");
    assert!(!message.contains(KEY), "the key leaked: {message}");
}

#[tokio::test]
async fn webhook_signatures_made_by_the_stripe_package() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (start, end) = period();
    serve_subscription(
        &s,
        subscription("sub_1", "active", false, start, end, &s.org_id),
    )
    .await;
    let completed = event(
        "evt_1",
        "checkout.session.completed",
        json!({"id": "cs_test_1", "client_reference_id": s.org_id, "customer": "cus_test", "subscription": "sub_1"}),
    );
    let payload = completed.to_string();
    let now = Utc::now().timestamp();

    // tampered body, wrong secret, stale timestamp, missing header: 400 and nothing changes
    let good = sign(&payload, SECRET, now);
    let tampered = payload.replace("cus_test", "cus_evil");
    let refused = [
        (tampered.as_str(), Some(good.clone())),
        (payload.as_str(), Some(sign(&payload, "whsec_wrong", now))),
        (payload.as_str(), Some(sign(&payload, SECRET, now - 301))),
        (payload.as_str(), Some(sign(&payload, SECRET, now - 3600))),
        (payload.as_str(), None),
        (payload.as_str(), Some("t=abc,v1=zz".to_string())),
    ];
    for (body, sig) in refused {
        let (status, res) = deliver(&s.app, body, sig.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sig:?}: {res}");
        assert_error(&res, StatusCode::BAD_REQUEST);
    }
    assert_eq!(billing(&s).await["plan"], "free");
    assert!(
        requests(&s.server, "GET", "/v1/subscriptions/sub_1")
            .await
            .is_empty()
    );

    // two v1 entries, one from an unknown secret: accepted
    let wrong = sign(&payload, "whsec_wrong", now);
    let two = format!("{},{}", wrong, good.split(',').nth(1).unwrap());
    assert!(two.matches("v1=").count() == 2, "{two}");
    let (status, res) = deliver(&s.app, &payload, Some(&two)).await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    assert_eq!(res, json!({"received": true}));

    let b = billing(&s).await;
    assert_eq!(b["plan"], "payAsYouGo");
    assert_eq!(b["subscriptionStatus"], "active");
    assert_eq!(
        b["currentPeriodEnd"].as_str().unwrap(),
        chrono::DateTime::from_timestamp(end, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        "the period comes from the subscription items"
    );

    // the same event again: acknowledged, not processed again
    let (status, _) = deliver(&s.app, &payload, Some(&sign(&payload, SECRET, now))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        requests(&s.server, "GET", "/v1/subscriptions/sub_1")
            .await
            .len(),
        1
    );

    // the previous secret still works (rotation)
    let renewed = event(
        "evt_2",
        "invoice.paid",
        json!({"id": "in_1", "subscription": "sub_1"}),
    )
    .to_string();
    let (status, _) = deliver(&s.app, &renewed, Some(&sign(&renewed, OLD_SECRET, now))).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn events_out_of_order_leave_the_latest_state() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (start, end) = period();
    subscribe(&s, start, end).await;
    // now the subscription is set to cancel at period end; the double has the latest state
    s.server.reset().await;
    serve_subscription(
        &s,
        subscription("sub_1", "active", true, start, end, &s.org_id),
    )
    .await;
    let updated = event(
        "evt_updated",
        "customer.subscription.updated",
        subscription("sub_1", "active", true, start, end, &s.org_id),
    );
    // an older "created" event (incomplete, no cancellation) arrives after it
    let created = event(
        "evt_created",
        "customer.subscription.created",
        subscription(
            "sub_1",
            "incomplete",
            false,
            start - 86400,
            end - 86400,
            &s.org_id,
        ),
    );
    assert_eq!(
        deliver_signed(&s.app, &updated).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        deliver_signed(&s.app, &created).await.0,
        StatusCode::CREATED
    );
    let b = billing(&s).await;
    assert_eq!(b["plan"], "payAsYouGo");
    assert_eq!(b["subscriptionStatus"], "active");
    assert_eq!(b["cancelAtPeriodEnd"], true);

    // a late "deleted" of an old subscription does not end the current one
    serve_subscription(
        &s,
        subscription(
            "sub_old",
            "canceled",
            false,
            start - 90 * 86400,
            start,
            &s.org_id,
        ),
    )
    .await;
    let deleted_old = event(
        "evt_old_deleted",
        "customer.subscription.deleted",
        subscription(
            "sub_old",
            "canceled",
            false,
            start - 90 * 86400,
            start,
            &s.org_id,
        ),
    );
    assert_eq!(
        deliver_signed(&s.app, &deleted_old).await.0,
        StatusCode::CREATED
    );
    assert_eq!(billing(&s).await["plan"], "payAsYouGo");

    // the current one deleted: back to free
    s.server.reset().await;
    serve_subscription(
        &s,
        subscription("sub_1", "canceled", false, start, end, &s.org_id),
    )
    .await;
    let deleted = event(
        "evt_deleted",
        "customer.subscription.deleted",
        subscription("sub_1", "canceled", false, start, end, &s.org_id),
    );
    assert_eq!(
        deliver_signed(&s.app, &deleted).await.0,
        StatusCode::CREATED
    );
    let b = billing(&s).await;
    assert_eq!(b["plan"], "free");
    assert_eq!(b["subscriptionStatus"], "canceled");
}

#[tokio::test]
async fn usage_is_reported_once_per_cent_even_across_failures() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (start, end) = period();
    subscribe(&s, start, end).await;
    s.app.use_cents(&s.org_id, 12.5).await.unwrap();

    let e = thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    assert_eq!(
        e.status,
        thesis_db::entities::CronStatus::Success,
        "{:?}",
        e.error
    );
    let events = requests(&s.server, "POST", "/v1/billing/meter_events").await;
    assert_eq!(events.len(), 1);
    let identifier = format!("thesis-usage-{}-{start}-12", s.org_id);
    let f = form(&events[0]);
    assert_eq!(
        &f[..4],
        &pairs(&[
            ("event_name", "thesis_usage"),
            ("payload[stripe_customer_id]", "cus_test"),
            ("payload[value]", "12"),
            ("identifier", &identifier),
        ])[..]
    );
    assert_eq!(f[4].0, "timestamp");
    assert_eq!(
        header(&events[0], "idempotency-key"),
        Some(identifier.as_str())
    );

    // nothing new: nothing sent
    thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    assert_eq!(
        requests(&s.server, "POST", "/v1/billing/meter_events")
            .await
            .len(),
        1
    );

    // Stripe fails: the report stays pending and the job fails
    s.app.use_cents(&s.org_id, 0.6).await.unwrap(); // 13.1 cents in all
    s.server.reset().await;
    serve_subscription(
        &s,
        subscription("sub_1", "active", false, start, end, &s.org_id),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/meter_events"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&s.server)
        .await;
    let e = thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    assert_eq!(e.status, thesis_db::entities::CronStatus::Failed);
    let failed: Vec<_> = requests(&s.server, "POST", "/v1/billing/meter_events").await;
    assert_eq!(failed.len(), 3, "bounded retries");
    let id13 = format!("thesis-usage-{}-{start}-13", s.org_id);
    assert!(
        failed
            .iter()
            .all(|r| form(r).contains(&("identifier".into(), id13.clone())))
    );

    // Stripe is back: the same identifier and value are sent again, and more usage adds a new one
    s.server.reset().await;
    serve_subscription(
        &s,
        subscription("sub_1", "active", false, start, end, &s.org_id),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing/meter_events"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "billing.meter_event"})),
        )
        .mount(&s.server)
        .await;
    s.app.use_cents(&s.org_id, 2.0).await.unwrap(); // 15.1
    let e = thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    assert_eq!(
        e.status,
        thesis_db::entities::CronStatus::Success,
        "{:?}",
        e.error
    );
    let sent: Vec<Vec<(String, String)>> = requests(&s.server, "POST", "/v1/billing/meter_events")
        .await
        .iter()
        .map(form)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains(&("identifier".into(), id13)));
    assert!(sent[0].contains(&("payload[value]".into(), "1".into())));
    assert!(sent[1].contains(&("payload[value]".into(), "2".into())));
    assert!(sent[1].contains(&(
        "identifier".into(),
        format!("thesis-usage-{}-{start}-15", s.org_id)
    )));

    // the admin view shows the ledger of reports: 12 + 1 + 2 = 15 whole cents of 15.1
    let (_, info) = s
        .app
        .get(
            &format!("/v1/admin/organizations/{}/stripe", s.org_id),
            Some(&s.root.token),
        )
        .await;
    let reports = info["usageReports"].as_array().unwrap();
    assert_eq!(
        reports
            .iter()
            .map(|r| r["cents"].as_i64().unwrap())
            .sum::<i64>(),
        15
    );
    assert!(reports.iter().all(|r| r["status"] == "sent"));
    assert_eq!(info["live"]["id"], "sub_1");
}

#[tokio::test]
async fn allowance_is_not_reported() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (start, end) = period();
    subscribe(&s, start, end).await;
    // the platform admin gives 10 cents per period (as a member of the organization)
    s.app
        .invite(&s.owner.token, &s.org_id, "root@example.com", "member")
        .await;
    s.app.accept_invite_from_mail("root@example.com").await;
    let (status, _, body) = s
        .app
        .call_full(
            Method::PUT,
            "/v1/organization",
            Some(&s.root.token),
            Some(json!({"usageAllowanceCents": 10})),
            &[("x-organization-id", &s.org_id)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.app.use_cents(&s.org_id, 8.0).await.unwrap();
    thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    assert!(
        requests(&s.server, "POST", "/v1/billing/meter_events")
            .await
            .is_empty()
    );
    s.app.use_cents(&s.org_id, 5.0).await.unwrap();
    thesis_api::cron::run_now(&s.app.state, "usage-report")
        .await
        .unwrap();
    let sent = requests(&s.server, "POST", "/v1/billing/meter_events").await;
    assert_eq!(sent.len(), 1);
    assert!(form(&sent[0]).contains(&("payload[value]".into(), "3".into())));
    assert_eq!(billing(&s).await["estimatedChargeCents"], 3.0);
}

#[tokio::test]
async fn bill_now_twice_never_charges_twice() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let (start, end) = period();
    subscribe(&s, start, end).await;
    s.app.use_cents(&s.org_id, 40.0).await.unwrap();
    // Stripe starts the new period at the reset
    let new_start = Utc::now().timestamp() + 1;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription(
            "sub_1",
            "active",
            false,
            new_start,
            new_start + 30 * 86400,
            &s.org_id,
        )))
        .mount(&s.server)
        .await;

    let bill_now = format!("/v1/admin/organizations/{}/stripe/bill-now", s.org_id);
    let (status, body) = s
        .app
        .call(Method::POST, &bill_now, Some(&s.root.token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["reportedCents"], 40);
    let resets = requests(&s.server, "POST", "/v1/subscriptions/sub_1").await;
    assert_eq!(resets.len(), 1);
    assert_eq!(
        form(&resets[0]),
        pairs(&[
            ("billing_cycle_anchor", "now"),
            ("proration_behavior", "none")
        ])
    );
    assert_eq!(
        header(&resets[0], "idempotency-key"),
        Some(format!("bill-now-sub_1-{start}").as_str())
    );

    // a second bill-now: no usage is reported again
    let (status, body) = s
        .app
        .call(Method::POST, &bill_now, Some(&s.root.token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["reportedCents"], 0);
    let events = requests(&s.server, "POST", "/v1/billing/meter_events").await;
    assert_eq!(events.len(), 1, "usage was sent once");
    let total: i64 = events
        .iter()
        .map(|r| {
            form(r)
                .into_iter()
                .find(|(k, _)| k == "payload[value]")
                .unwrap()
                .1
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 40);
    let resets = requests(&s.server, "POST", "/v1/subscriptions/sub_1").await;
    assert_ne!(
        header(&resets[0], "idempotency-key"),
        header(&resets[1], "idempotency-key"),
        "the second call is for the new period"
    );
    // a retry of the very same call reuses its key, so Stripe answers it once
    assert_eq!(
        header(&resets[1], "idempotency-key"),
        Some(format!("bill-now-sub_1-{new_start}").as_str())
    );
}

#[tokio::test]
async fn admin_subscription_actions_send_the_exact_requests() {
    if !python_peer_available("stripe") {
        return;
    }
    let s = setup().await;
    let base = format!("/v1/admin/organizations/{}/stripe", s.org_id);
    // no subscription yet
    let (status, _) = s
        .app
        .call(
            Method::POST,
            &format!("{base}/cancel"),
            Some(&s.root.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (start, end) = period();
    subscribe(&s, start, end).await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(subscription("sub_1", "active", true, start, end, &s.org_id)),
        )
        .mount(&s.server)
        .await;
    let (status, info) = s
        .app
        .call(
            Method::POST,
            &format!("{base}/cancel"),
            Some(&s.root.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["cancelAtPeriodEnd"], true);
    let updates = requests(&s.server, "POST", "/v1/subscriptions/sub_1").await;
    assert_eq!(
        form(&updates[0]),
        pairs(&[("cancel_at_period_end", "true")])
    );

    s.server.reset().await;
    serve_subscription(
        &s,
        subscription("sub_1", "active", false, start, end, &s.org_id),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription(
            "sub_1", "active", false, start, end, &s.org_id,
        )))
        .mount(&s.server)
        .await;
    let (status, info) = s
        .app
        .call(
            Method::POST,
            &format!("{base}/reactivate"),
            Some(&s.root.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["cancelAtPeriodEnd"], false);
    assert_eq!(
        form(&requests(&s.server, "POST", "/v1/subscriptions/sub_1").await[0]),
        pairs(&[("cancel_at_period_end", "false")])
    );
    // not pending cancellation any more
    let (status, _) = s
        .app
        .call(
            Method::POST,
            &format!("{base}/reactivate"),
            Some(&s.root.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription(
            "sub_1", "canceled", false, start, end, &s.org_id,
        )))
        .mount(&s.server)
        .await;
    let (status, info) = s
        .app
        .call(
            Method::POST,
            &format!("{base}/cancel-immediately"),
            Some(&s.root.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["plan"], "free");
    assert_eq!(info["subscriptionStatus"], "canceled");
    let deletes = requests(&s.server, "DELETE", "/v1/subscriptions/sub_1").await;
    assert_eq!(
        form(&deletes[0]),
        pairs(&[("invoice_now", "true"), ("prorate", "false")])
    );

    // other callers
    for p in [
        "",
        "/cancel",
        "/cancel-immediately",
        "/reactivate",
        "/bill-now",
    ] {
        let m = if p.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let (status, _) = s
            .app
            .call(m, &format!("{base}{p}"), Some(&s.owner.token), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    }
    let unknown = format!("/v1/admin/organizations/{}/stripe", uuid::Uuid::now_v7());
    assert_eq!(
        s.app.get(&unknown, Some(&s.root.token)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn self_hosted_mode_sends_nothing_and_admin_actions_are_503() {
    let app = TestApp::spawn_with(&[("THESIS_ADMIN_EMAILS", "root@example.com")]).await;
    let root = app.signup("root@example.com").await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let base = format!(
        "/v1/admin/organizations/{}/stripe",
        org["id"].as_str().unwrap()
    );
    let (status, info) = app.get(&base, Some(&root.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["billingMode"], "selfHosted");
    assert!(info["live"].is_null());
    for p in ["/cancel", "/cancel-immediately", "/reactivate", "/bill-now"] {
        let (status, _) = app
            .call(Method::POST, &format!("{base}{p}"), Some(&root.token), None)
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{p}");
    }
    // without a webhook secret, events are refused so that Stripe retries them later
    let (status, _) = deliver(&app, "{}", Some("t=1,v1=00")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
