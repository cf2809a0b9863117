//! deploy/kubernetes/ (issue 16): the manifests parsed as YAML, and every binding to mailshot checked: the
//! arguments `send` takes, JOB_COMPLETION_INDEX, the shard count against completions and parallelism, the exit
//! codes in the podFailurePolicy against `exit_codes`, and the files job.toml names against the mounts that
//! put them there (ConfigMap keys, the Secret's key, the shared volume beside job.toml). Then the ConfigMap's
//! job, laid out as the pod sees it, passes `mailshot check --shards N`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use mailshot::config::JobFile;
use mailshot::exit_codes;
use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every manifest under deploy/kubernetes, by kind.
fn manifests() -> HashMap<String, Value> {
    let mut found = HashMap::new();
    for entry in std::fs::read_dir(root().join("kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let doc: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("{}: no kind", path.display())).to_owned();
            assert!(found.insert(kind.clone(), doc).is_none(), "two manifests of kind {kind}");
        }
    }
    found
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

fn codes(rule: &Value) -> Vec<u8> {
    rule["onExitCodes"]["values"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect()
}

/// Checks one Indexed Job spec (the Job's, or the CronJob's jobTemplate's) against mailshot and the other
/// manifests; returns the shard count. `on_75` is the action the policy takes on exit 75.
fn check_indexed_job(spec: &Value, all: &HashMap<String, Value>, on_75: &str) -> u32 {
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "one pod per shard at once");
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some_and(|b| b > 0), "a failed shard is retried on its own");

    let rules = spec["podFailurePolicy"]["rules"].as_sequence().unwrap();
    let action = |code: u8| {
        let rule = rules.iter().find(|r| !r["onExitCodes"].is_null() && codes(r).contains(&code));
        rule.map(|r| r["action"].as_str().unwrap().to_owned())
    };
    assert_eq!(action(exit_codes::INPUT_ERROR).as_deref(), Some("FailIndex"), "exit 2 fails the index at once");
    assert_eq!(action(exit_codes::ABORTED).as_deref(), Some("FailIndex"), "exit 3 fails the index at once");
    assert_eq!(action(exit_codes::TEMPFAIL).as_deref(), Some(on_75), "exit 75");
    assert_eq!(action(exit_codes::SUCCESS), None);

    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"), "podFailurePolicy requires it");
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    for rule in rules.iter().filter(|r| !r["onExitCodes"].is_null()) {
        assert_eq!(rule["onExitCodes"]["containerName"], container["name"], "the policy names the container");
    }
    assert!(container["command"].is_null(), "the image's ENTRYPOINT is mailshot; args follow it");
    assert_eq!(
        container["image"].as_str().map(|i| i.split('/').next_back().unwrap().split(':').next().unwrap()),
        Some("mailshot")
    );

    // send JOB --shards N --yes: the shard count is the Job's, and the index comes from JOB_COMPLETION_INDEX.
    let args = strings(&container["args"]);
    assert_eq!(args[0], "send");
    let shards = args.iter().position(|a| a == "--shards").expect("--shards N");
    assert_eq!(args[shards + 1].parse::<u64>().unwrap(), n, "--shards N = completions");
    assert!(args.iter().any(|a| a == "--yes"), "no terminal in a pod: --yes");
    let parsed = mailshot::cli::Cli::try_parse_from(std::iter::once("mailshot").chain(args.iter().map(String::as_str)));
    assert!(parsed.is_ok(), "mailshot takes these arguments: {}", parsed.unwrap_err());
    let env = container["env"].as_sequence().unwrap();
    let index = env.iter().find(|e| e["name"].as_str() == Some(mailshot::job::shard::INDEX_ENV)).expect("the index");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );

    check_files(Path::new(&args[1]), container, pod, all, n as u32);
    n as u32
}

/// Where each mounted path comes from: (volume source kind, name, key).
fn mounts(container: &Value, pod: &Value) -> Vec<(PathBuf, String, String, Option<String>)> {
    let volumes = pod["volumes"].as_sequence().unwrap();
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    mounts
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap();
            let volume = volumes.iter().find(|v| v["name"].as_str() == Some(name)).expect("a volume per mount");
            let (kind, source) = if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
                ("PersistentVolumeClaim", claim)
            } else if let Some(map) = volume["configMap"]["name"].as_str() {
                ("ConfigMap", map)
            } else {
                ("Secret", volume["secret"]["secretName"].as_str().expect("a known volume kind"))
            };
            let path = PathBuf::from(m["mountPath"].as_str().unwrap());
            (path, kind.to_owned(), source.to_owned(), m["subPath"].as_str().map(str::to_owned))
        })
        .collect()
}

/// job.toml from the ConfigMap; its folder is the ReadWriteMany volume (journals, locks, reports); its CSV and
/// templates are ConfigMap keys mounted there; its password_file is the Secret's key. Then `check` passes.
fn check_files(job: &Path, container: &Value, pod: &Value, all: &HashMap<String, Value>, n: u32) {
    let mounts = mounts(container, pod);
    let config_map = &all["ConfigMap"];
    let file_from = |path: &Path| -> &str {
        let (_, _, name, key) = mounts
            .iter()
            .find(|(p, kind, ..)| p == path && kind == "ConfigMap")
            .unwrap_or_else(|| panic!("{} is not mounted from the ConfigMap", path.display()));
        assert_eq!(name, config_map["metadata"]["name"].as_str().unwrap());
        let key = key.as_deref().expect("a file mount (subPath)");
        config_map["data"][key].as_str().unwrap_or_else(|| panic!("no key {key} in the ConfigMap"))
    };
    let dir = job.parent().unwrap();
    let state =
        mounts.iter().find(|(p, kind, ..)| p == dir && kind == "PersistentVolumeClaim").expect("job.toml's folder");
    let pvc = &all["PersistentVolumeClaim"];
    assert_eq!(state.2, pvc["metadata"]["name"].as_str().unwrap());
    assert_eq!(strings(&pvc["spec"]["accessModes"]), ["ReadWriteMany"], "a restarted pod may land on another node");

    let text = file_from(job);
    let parsed = JobFile::parse(job, text).unwrap_or_else(|e| panic!("the ConfigMap's job.toml: {e}"));
    let message = parsed.message.as_ref().unwrap();
    let recipients = parsed.recipients.as_ref().unwrap();
    let named = [
        Some(recipients.csv.get_ref()),
        message.text.as_ref().map(|t| t.get_ref()),
        message.html.as_ref().map(|h| h.get_ref()),
    ];
    let secret_file = parsed.smtp.password_file.clone().expect("password_file");
    let (secret_dir, secret_key) = (secret_file.parent().unwrap(), secret_file.file_name().unwrap().to_str().unwrap());
    let secret = mounts.iter().find(|(p, kind, ..)| p == secret_dir && kind == "Secret").expect("the Secret's mount");
    let secret_doc = &all["Secret"];
    assert_eq!(secret.2, secret_doc["metadata"]["name"].as_str().unwrap());
    assert!(secret_doc["stringData"][secret_key].is_string(), "the Secret has the key password_file names");
    if let Some(share) = &parsed.rate.shard_share {
        assert_eq!(share.len() as u32, n, "[rate] shard_share has one weight per shard");
    }

    // The pod's view of the campaign folder, on disk: job.toml's files where the mounts put them.
    let laid = tempfile::tempdir().unwrap();
    for relative in named.into_iter().flatten() {
        let contents = file_from(&dir.join(relative));
        let target = laid.path().join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, contents).unwrap();
    }
    let password = laid.path().join("password");
    std::fs::write(&password, "x").unwrap();
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let local = text.replace(&format!("\"{}\"", secret_file.display()), &format!("\"{}\"", password.display()));
    assert_ne!(local, text, "password_file is written as a quoted path");
    std::fs::write(laid.path().join("job.toml"), local).unwrap();
    let run = crate::jobs_support::run_in(laid.path(), &["check", "job.toml", "--shards", &n.to_string()]);
    run.expect(0).line_with(&[&format!("shard {}/{n}", n - 1)]);
}

#[test]
fn the_indexed_job_and_the_cronjob_bind_to_mailshot_as_it_is() {
    let all = manifests();
    for kind in ["Job", "CronJob", "ConfigMap", "Secret", "PersistentVolumeClaim"] {
        assert!(all.contains_key(kind), "no {kind} manifest");
    }
    let n = check_indexed_job(&all["Job"]["spec"], &all, "Count");
    let cron = &all["CronJob"]["spec"];
    assert_eq!(cron["concurrencyPolicy"].as_str(), Some("Forbid"), "one day's shards at a time");
    let daily = check_indexed_job(&cron["jobTemplate"]["spec"], &all, "FailIndex");
    assert_eq!(daily, n);
}

#[test]
fn the_containerfile_builds_in_two_stages_and_runs_mailshot_unprivileged() {
    let text = std::fs::read_to_string(root().join("Containerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[1].contains("debian") && froms[1].contains("slim"), "{froms:?}");
    assert!(text.contains("cargo build --release --locked"));
    assert!(text.lines().any(|l| l == "ENTRYPOINT [\"/usr/local/bin/mailshot\"]"), "the manifests pass args only");
    let user = text.lines().find_map(|l| l.strip_prefix("USER ")).expect("a USER");
    let job: Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("kubernetes/job.yaml")).unwrap()).unwrap();
    let uid = job["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64().unwrap();
    assert_eq!(user.split(':').next().unwrap(), uid.to_string(), "the image's user is the pod's");
}
