//! The application API, as a service or a test harness drives it without the CLI.

use std::sync::Arc;
use std::time::Duration;

use host::app::{App, AppError, JobSource, Settings};
use host::events::NoEvents;
use host::store::RunStatus;

use crate::support::{TempJob, root, run_example};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_submitted_run_is_recorded_and_gives_the_seed_result() {
    run_example("dynamic_graph", &[]).expect_code(0);
    let store = tempfile::tempdir().unwrap();
    let app = App::open(store.path()).unwrap();
    let source = JobSource::file(&root().join("guest-examples/jobs/dynamic_graph.toml"));
    tokio().block_on(async {
        let handle = app.submit(&source, &Settings::default()).await.unwrap();
        let id = handle.run_id().to_string();
        let run = handle.execute(&mut NoEvents).await;
        let node = run.plan.node("merge_and_analyze").unwrap();
        assert_eq!(run.output_for_node(node, "result"), 9900);
        let record = app.store().run(&id).unwrap();
        assert_eq!(record.status, RunStatus::Success);
        let snapshot = app.store().snapshot(&id).unwrap().unwrap();
        assert!(snapshot.job_text.contains("merge_and_analyze"));
    });
}

#[test]
fn cancel_stops_a_run_this_process_executes_and_it_resumes() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 20 }\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 200 }\n\
         inputs.value = { map = 'fan_out' }\n",
    );
    let store = tempfile::tempdir().unwrap();
    let app = App::open(store.path()).unwrap();
    let settings = Settings {
        max_concurrent: Some(1),
        ..Settings::default()
    };
    tokio().block_on(async {
        let handle = app
            .submit(&JobSource::file(&job.path()), &settings)
            .await
            .unwrap();
        let id = handle.run_id().to_string();
        let running = tokio::spawn(async move { handle.execute(&mut NoEvents).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.cancel(&id).unwrap();
        let run = running.await.unwrap();
        assert!(run.canceled());
        assert_eq!(app.store().run(&id).unwrap().status, RunStatus::Canceled);
        // Once it ended, there is nothing left to stop.
        assert!(matches!(
            app.cancel(&id),
            Err(AppError::NotRunning {
                status: RunStatus::Canceled,
                ..
            })
        ));

        let resumed = app.resume(&id, &settings).await.unwrap();
        let run = resumed.execute(&mut NoEvents).await;
        assert!(run.succeeded());
        assert_eq!(app.store().run(&id).unwrap().status, RunStatus::Success);
    });
}

#[test]
fn runs_of_one_app_share_its_engine_until_one_needs_more() {
    let job = TempJob::new("[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3 }\n");
    let store = tempfile::tempdir().unwrap();
    let app = App::open(store.path()).unwrap();
    let source = JobSource::file(&job.path());
    let with = |max_concurrent| Settings {
        max_concurrent: Some(max_concurrent),
        ..Settings::default()
    };
    tokio().block_on(async {
        let first = app.submit(&source, &with(2)).await.unwrap();
        let second = app.submit(&source, &with(1)).await.unwrap();
        let engine = |handle: &host::app::RunHandle| handle.prepared().runtime.clone();
        assert!(Arc::ptr_eq(&engine(&first), &engine(&second)));
        // More concurrency than the pool has room for: a larger engine, shared from then on.
        let third = app.submit(&source, &with(4)).await.unwrap();
        let fourth = app.submit(&source, &with(3)).await.unwrap();
        assert!(!Arc::ptr_eq(&engine(&first), &engine(&third)));
        assert!(Arc::ptr_eq(&engine(&third), &engine(&fourth)));
        assert_eq!(engine(&third).size().max_concurrent, 4);
        for handle in [first, second, third, fourth] {
            assert!(handle.execute(&mut NoEvents).await.succeeded());
        }
    });
}
