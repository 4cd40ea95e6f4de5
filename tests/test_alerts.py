"""Failure alerts: automations on the server, and the flow's own on_failure hook as a fallback.

The e2e test deploys prefect.yaml to a real Prefect server on loopback, installs the alerts with
`houseprice alerts install` pointing at a webhook receiver on loopback, and makes a nightly run
fail for a real reason (its data folder is a file). The receiver must get the failure automation's
message naming the run and its error, and the silence automation's notice (its window shortened
to seconds); the hook must stay quiet, since the automation speaks for that deployment.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest

from houseprice import storage
from houseprice.cli import main
from houseprice.flows import alerts
from tests.conftest import small_config
from tests.test_deployment import POOL, _free_port, prefect_server  # noqa: F401 (fixture)

MESSAGE_TIMEOUT_S = 90


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self):
        self.messages: list[dict] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, *needles: str, timeout_s: float = MESSAGE_TIMEOUT_S) -> dict:
        """The first message whose text holds every needle; fails after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if all(needle in message.get("text", "") for needle in needles):
                    return message
            time.sleep(0.25)
        pytest.fail(f"no message holding {needles} within {timeout_s} s; got {self.messages}")


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _broken_config(tmp_path: Path):
    """A config whose data folder is a file: every run fails, for a real reason."""
    config = small_config(tmp_path)
    Path(config.paths.data_dir).write_text("not a folder\n")
    return config


# ---------------------------------------------------------------------------------------------
# The automations, as built.


def test_the_automations_watch_failures_and_silence_of_the_deployment():
    deployment_id, block_id = uuid4(), uuid4()
    failed, silent = alerts.alert_automations(deployment_id, "retrain/nightly", block_id, 26)
    related = {
        "prefect.resource.id": f"prefect.deployment.{deployment_id}",
        "prefect.resource.role": "deployment",
    }
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert failed.trigger.posture == "Reactive" and failed.trigger.match_related.root == related
    assert silent.trigger.expect == {"prefect.flow-run.Completed"}
    assert silent.trigger.posture == "Proactive" and silent.trigger.match_related.root == related
    assert silent.trigger.within == timedelta(hours=26)
    for automation in (failed, silent):
        (action,) = automation.actions
        assert action.block_document_id == block_id
    assert "{{ flow_run.name }}" in failed.actions[0].body
    assert "{{ flow_run.state.message }}" in failed.actions[0].body


def test_alerts_install_needs_a_prefect_server(capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["alerts", "install", "--webhook-url", "http://127.0.0.1:9/hook"]) == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The flow's on_failure hook, in process.


@pytest.fixture
def alerts_block(prefect_harness, receiver):
    """The alerts block, saved on the session's test server, posting to the receiver."""
    from prefect.client.orchestration import get_client

    block_id = alerts.webhook_block(receiver.url).save(alerts.BLOCK_NAME, overwrite=True)
    yield receiver
    with get_client(sync_client=True) as client:  # other tests' failing runs must not post
        client.delete_block_document(block_id)


def _failed_run(config):
    """Run the retrain flow, which must fail; return its flow run and final state."""
    from prefect.client.orchestration import get_client

    from houseprice.flows.retrain import retrain

    state = retrain(config, return_state=True)
    assert state.is_failed()
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id), state


@pytest.mark.slow
def test_a_failed_run_posts_its_name_and_error_through_the_alerts_block(alerts_block, tmp_path):
    config = _broken_config(tmp_path)
    flow_run, state = _failed_run(config)
    message = alerts_block.wait_for(flow_run.name, "ended Failed", timeout_s=10)
    assert str(config.paths.data_dir) in state.message
    assert state.message in message["text"]
    assert message["subject"] == f"houseprice: flow run {flow_run.name} Failed"


@pytest.mark.slow
def test_the_hook_is_left_out_only_while_no_alerts_are_configured(prefect_harness, receiver):
    from prefect.client.orchestration import get_client

    from houseprice.flows.retrain import retrain

    quiet = alerts.without_unused_alerts(retrain)  # no block: Prefect would log two idle lines
    assert alerts.notify_failure not in quiet.on_failure_hooks + quiet.on_crashed_hooks
    assert quiet.flow_run_name is retrain.flow_run_name
    assert alerts.notify_failure in retrain.on_failure_hooks  # deployments' runs keep it
    block_id = alerts.webhook_block(receiver.url).save(alerts.BLOCK_NAME, overwrite=True)
    try:
        assert alerts.without_unused_alerts(retrain) is retrain
    finally:
        with get_client(sync_client=True) as client:
            client.delete_block_document(block_id)


@pytest.mark.slow
def test_the_hook_never_hides_the_runs_own_error_when_the_webhook_is_down(
    prefect_harness, tmp_path, caplog
):
    from prefect.client.orchestration import get_client

    down = f"http://127.0.0.1:{_free_port()}/hook"  # nothing listens there
    block_id = alerts.webhook_block(down).save(alerts.BLOCK_NAME, overwrite=True)
    try:
        config = _broken_config(tmp_path)
        _, state = _failed_run(config)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_block_document(block_id)
    assert str(config.paths.data_dir) in state.message  # the run's error, not the hook's
    assert any("failure alert not sent" in record.getMessage() for record in caplog.records)


def test_alerts_install_refuses_a_missing_deployment(prefect_harness, capsys):
    argv = ["alerts", "install", "--webhook-url", "http://127.0.0.1:9/hook"]
    assert main([*argv, "--deployment", "retrain/nowhere"]) == 1
    assert "deploy it first" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# End to end: a real server, the automations, a failing nightly run on a process worker.


@pytest.mark.e2e
def test_a_failed_nightly_run_reaches_the_webhook(prefect_server, receiver, tmp_path):  # noqa: F811
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = prefect_server
    server.cli("work-pool", "create", POOL, "--type", "process")
    server.env["PWD"] = str(storage.REPO_ROOT)  # as in test_deployment: Popen sets no PWD
    server.cli("deploy", "--name", "nightly")
    # 11 s of silence instead of 26 h: long enough for a Prefect proactive trigger (10 s).
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        argv = ["alerts", "install", "--webhook-url", receiver.url, "--silence-hours", "0.003"]
        assert main(argv) == 0
    request = urllib.request.Request(f"{server.api_url}/automations/filter", data=b"{}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        installed = sorted(item["name"] for item in json.load(response))
    assert installed == ["houseprice: retrain/nightly failed", "houseprice: retrain/nightly silent"]

    config = _broken_config(tmp_path).model_dump(mode="json")
    flow_run_id = server.run_deployment("retrain/nightly", {"config": config})
    server.run_worker_once()
    flow_run = server.get(f"flow_runs/{flow_run_id}")
    assert flow_run["state"]["type"] == "FAILED"
    error = flow_run["state"]["message"]
    assert config["paths"]["data_dir"] in error

    alert = receiver.wait_for(flow_run["name"], "of deployment retrain/nightly", error)
    assert alert["subject"] == f"houseprice: flow run {flow_run['name']} Failed"
    receiver.wait_for("no completed run of retrain/nightly")
    # The automation spoke for the deployment, so the run's own hook stayed quiet.
    assert not [m for m in receiver.messages if "of flow retrain ended" in m["text"]]
