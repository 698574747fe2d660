//! `thesis_db::Batch`: statements committed together in one round trip, or not at all.

use sea_orm::ActiveValue::Set;
use sea_orm::{EntityTrait, PaginatorTrait, QueryTrait};
use thesis_db::Batch;
use thesis_db::entities::newsletter_subscriber as sub;

use crate::support::*;

fn insert(email: &str) -> sea_orm::sea_query::InsertStatement {
    sub::Entity::insert(sub::ActiveModel {
        id: Set(thesis_db::new_id()),
        email: Set(email.to_string()),
        email_normalized: Set(email.to_lowercase()),
        created_at: Set(thesis_db::now()),
    })
    .into_query()
}

async fn count(db: &sea_orm::DatabaseConnection) -> u64 {
    sub::Entity::find().count(db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_every_statement_or_none() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let backend = db.get_database_backend();

    let mut ok = Batch::new(backend);
    ok.push(&insert("a@example.com"))
        .push(&insert("b@example.com"))
        .push(&insert("c@example.com"));
    ok.commit(db).await.unwrap();
    assert_eq!(count(db).await, 3);

    // the third statement is a duplicate: the two before it are undone
    let mut bad = Batch::new(backend);
    bad.push(&insert("d@example.com"))
        .push(&insert("e@example.com"))
        .push(&insert("A@example.com"));
    let err = bad.commit(db).await.unwrap_err();
    assert!(thesis_db::is_unique_violation(&err), "{err}");
    assert_eq!(count(db).await, 3, "nothing of the failed batch is kept");

    // no pooled connection was left inside the failed transaction: more writes than the pool has
    // connections, each visible at once to the others, and each a batch of its own
    for i in 0..30 {
        let mut one = Batch::new(backend);
        one.push(&insert(&format!("later{i}@example.com")));
        one.commit(db).await.unwrap();
        assert_eq!(count(db).await, 4 + i);
    }
    // and ordinary transactions still begin and commit
    let txn = thesis_db::begin_write(db).await.unwrap();
    sub::Entity::insert(sub::ActiveModel {
        id: Set(thesis_db::new_id()),
        email: Set("txn@example.com".into()),
        email_normalized: Set("txn@example.com".into()),
        created_at: Set(thesis_db::now()),
    })
    .exec(&txn)
    .await
    .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(count(db).await, 34);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_all_land() {
    let app = TestApp::spawn().await;
    let mut tasks = vec![];
    for i in 0..40 {
        let db = app.state.db.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = Batch::new(db.get_database_backend());
            b.push(&insert(&format!("x{i}@example.com")))
                .push(&insert(&format!("y{i}@example.com")));
            b.commit(&db).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(count(&app.state.db).await, 80);
}
