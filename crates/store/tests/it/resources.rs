//! Generic JSON resources and transactions.

use otastream_store::StoreError;
use serde_json::json;

use crate::fresh_store;

#[test]
fn resources_crud_keeps_insertion_order_and_parents() {
    let (_dir, store) = fresh_store();
    store
        .insert_resource("thing", "b-thing", None, &json!({"n": 1}))
        .unwrap();
    store
        .insert_resource("thing", "a-thing", Some("group1"), &json!({"n": 2}))
        .unwrap();
    store
        .insert_resource("thing", "c-thing", Some("group1"), &json!({"n": 3}))
        .unwrap();
    store
        .insert_resource("job", "a-thing", None, &json!("same id, other kind"))
        .unwrap();

    let dup = store
        .insert_resource("thing", "a-thing", None, &json!({}))
        .unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists(_)), "{dup}");
    assert_eq!(
        store.get_resource("thing", "a-thing").unwrap(),
        Some(json!({"n": 2})),
        "a failed insert changes nothing"
    );

    let ids: Vec<String> = store
        .list_resources("thing", None)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        ["b-thing", "a-thing", "c-thing"],
        "insertion order, not id order"
    );
    let children = store.list_resources("thing", Some("group1")).unwrap();
    assert_eq!(
        children,
        vec![
            ("a-thing".to_owned(), json!({"n": 2})),
            ("c-thing".to_owned(), json!({"n": 3}))
        ]
    );

    store
        .put_resource("thing", "b-thing", Some("group2"), &json!({"n": 10}))
        .unwrap();
    store
        .put_resource("thing", "d-thing", None, &json!({"n": 4}))
        .unwrap();
    let all = store.list_resources("thing", None).unwrap();
    assert_eq!(
        all[0],
        ("b-thing".to_owned(), json!({"n": 10})),
        "an upsert keeps its place"
    );
    assert_eq!(all.len(), 4);
    assert_eq!(
        store.list_resources("thing", Some("group2")).unwrap().len(),
        1
    );

    assert!(store.delete_resource("thing", "b-thing").unwrap());
    assert!(!store.delete_resource("thing", "b-thing").unwrap());
    assert_eq!(store.get_resource("thing", "b-thing").unwrap(), None);
    assert_eq!(
        store.get_resource("job", "a-thing").unwrap(),
        Some(json!("same id, other kind"))
    );
}

#[test]
fn transaction_commits_on_ok_and_rolls_back_on_err() {
    let (_dir, store) = fresh_store();
    let seen = store
        .transaction(|tx| {
            tx.insert_resource("job", "j1", None, &json!({"status": "QUEUED"}))?;
            tx.insert_resource("execution", "j1/t1", Some("j1"), &json!({}))?;
            tx.get_resource("job", "j1")
        })
        .unwrap();
    assert_eq!(
        seen,
        Some(json!({"status": "QUEUED"})),
        "a transaction sees its own writes"
    );
    assert_eq!(
        store.list_resources("execution", Some("j1")).unwrap().len(),
        1
    );

    let err = store
        .transaction(|tx| {
            tx.put_resource("job", "j1", None, &json!({"status": "CANCELED"}))?;
            tx.delete_resource("execution", "j1/t1")?;
            tx.insert_resource("job", "j2", None, &json!({}))?;
            tx.insert_resource("job", "j1", None, &json!({})) // AlreadyExists: everything above rolls back
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)));
    assert_eq!(
        store.get_resource("job", "j1").unwrap(),
        Some(json!({"status": "QUEUED"}))
    );
    assert_eq!(store.get_resource("job", "j2").unwrap(), None);
    assert_eq!(store.list_resources("execution", None).unwrap().len(), 1);
}

#[test]
fn a_panicking_transaction_rolls_back_and_the_store_stays_usable() {
    let (_dir, store) = fresh_store();
    let worker = store.clone();
    let joined = std::thread::spawn(move || {
        worker.transaction(|tx| -> Result<(), StoreError> {
            tx.insert_resource("thing", "ghost", None, &json!({}))?;
            panic!("handler bug");
        })
    })
    .join();
    assert!(
        joined.is_err(),
        "the panic propagates to its own thread only"
    );
    assert_eq!(store.get_resource("thing", "ghost").unwrap(), None);
    store
        .insert_resource("thing", "ghost", None, &json!({"ok": true}))
        .unwrap();
}
