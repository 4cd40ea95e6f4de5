"""Failure alerts: the retrain deployment's failures, and its silences, reach a person.

`houseprice alerts install --webhook-url URL` saves a webhook notification block and two Prefect
automations on the server, watching the deployment `retrain/nightly`:

- a failed or crashed flow run sends its name and error as soon as the server sees it;
- no completed run for 26 hours sends a notice: a night that never started (server, worker or
  schedule down) is noticed too.

Both post through the block, so the webhook URL is set (or changed) in one place. The retrain
flow's on_failure/on_crashed hook (`notify_failure`) is the fallback for runs no automation
watches (a served deployment, `houseprice retrain`): it posts through the same block, never
raises, and stays quiet where the failure automation will speak, so nobody is told twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from houseprice.errors import InputError

logger = logging.getLogger(__name__)

BLOCK_NAME = "houseprice-alerts"
DEPLOYMENT = "retrain/nightly"
# One night missed, plus two hours for a slow run: the schedule is 02:00 every night.
SILENCE_HOURS = 26.0
FAILED_AUTOMATION = "houseprice: {deployment} failed"
SILENT_AUTOMATION = "houseprice: {deployment} silent"

# What the block posts. `text` is what Slack, Mattermost and Teams-style webhooks display;
# `subject` and `body` are there for anything else.
WEBHOOK_JSON = {"text": "{{subject}}\n{{body}}", "subject": "{{subject}}", "body": "{{body}}"}

FAILED_SUBJECT = "houseprice: flow run {{ flow_run.name }} {{ flow_run.state.name }}"
FAILED_BODY = (
    "Flow run {{ flow_run.name }} ({{ flow_run.id }}) of deployment "
    "{{ flow.name }}/{{ deployment.name }} ended {{ flow_run.state.name }} at "
    "{{ flow_run.state.timestamp }}.\n"
    "Error: {{ flow_run.state.message }}\n"
    "Logs: prefect flow-run logs {{ flow_run.id }}"
)


class AlertsError(InputError, RuntimeError):
    """Alerts could not be installed (no server, no such deployment), with the reason."""


@dataclass(frozen=True)
class InstalledAlerts:
    """What `install_alerts` created on the server."""

    block_name: str
    deployment: str
    automations: dict[str, UUID]  # name -> id


def webhook_block(url: str):
    """The notification block that posts alerts to url as JSON."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(name=BLOCK_NAME, url=url, json_data=WEBHOOK_JSON)


def alert_automations(deployment_id: UUID, deployment: str, block_id: UUID, silence_hours: float):
    """The two automations: a failed or crashed run, and no completed run within the silence."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification

    of_deployment = {
        "prefect.resource.id": f"prefect.deployment.{deployment_id}",
        "prefect.resource.role": "deployment",
    }
    any_flow_run = {"prefect.resource.id": "prefect.flow-run.*"}
    failed = AutomationCore(
        name=FAILED_AUTOMATION.format(deployment=deployment),
        description=f"Tell a person when a run of {deployment} fails or crashes.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match=any_flow_run,
            match_related=of_deployment,
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(block_document_id=block_id, subject=FAILED_SUBJECT, body=FAILED_BODY)
        ],
    )
    silent = AutomationCore(
        name=SILENT_AUTOMATION.format(deployment=deployment),
        description=f"Tell a person when no run of {deployment} completes for {silence_hours:g} h.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match=any_flow_run,
            match_related=of_deployment,
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(hours=silence_hours),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"houseprice: no completed run of {deployment} for {silence_hours:g} hours",
                body=(
                    f"No flow run of {deployment} has completed in the last {silence_hours:g} "
                    "hours. Is the Prefect server up, a worker polling the work pool, and the "
                    "deployment's schedule active? `prefect deployment inspect "
                    f"{deployment}` shows the schedule."
                ),
            )
        ],
    )
    return [failed, silent]


def install_alerts(
    webhook_url: str, deployment: str = DEPLOYMENT, silence_hours: float = SILENCE_HOURS
) -> InstalledAlerts:
    """Save the webhook block and (re)create both automations on the configured server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    block_id = webhook_block(webhook_url).save(BLOCK_NAME, overwrite=True)
    with get_client(sync_client=True) as client:
        try:
            deployment_id = client.read_deployment_by_name(deployment).id
        except ObjectNotFound:
            raise AlertsError(
                f"no deployment {deployment!r} on the server: deploy it first "
                "(`prefect --no-prompt deploy --all` from the repository root)"
            ) from None
        created = {}
        for automation in alert_automations(deployment_id, deployment, block_id, silence_hours):
            for existing in client.read_automations_by_name(automation.name):
                client.delete_automation(existing.id)  # installing twice replaces, not doubles
            created[automation.name] = client.create_automation(automation)
    return InstalledAlerts(BLOCK_NAME, deployment, created)


def _watched_by_automation(client: Any, deployment_id: UUID) -> bool:
    """Whether an enabled failure automation covers runs of this deployment."""
    for automation in client.read_automations():
        trigger = automation.trigger
        related = getattr(trigger, "match_related", None)
        related = related if isinstance(related, list) else [related]
        ids = [spec.root.get("prefect.resource.id") for spec in related if spec is not None]
        if (
            automation.enabled
            and "prefect.flow-run.Failed" in getattr(trigger, "expect", set())
            and f"prefect.deployment.{deployment_id}" in ids
        ):
            return True
    return False


def failure_message(flow_name: str, flow_run: Any, state: Any) -> tuple[str, str]:
    """Subject and body naming the run and its error."""
    subject = f"houseprice: flow run {flow_run.name} {state.name}"
    body = (
        f"Flow run {flow_run.name} ({flow_run.id}) of flow {flow_name} ended {state.name}.\n"
        f"Error: {state.message}\n"
        f"Logs: prefect flow-run logs {flow_run.id}"
    )
    return subject, body


def alerts_configured() -> bool:
    """Whether the alerts block is saved on the server this process talks to."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    try:
        CustomWebhookNotificationBlock.load(BLOCK_NAME, validate=False)
    except ValueError:  # never installed: `houseprice alerts install` saves it
        return False
    return True


def without_unused_alerts(flow: Any) -> Any:
    """The flow, less its failure-alert hooks when no alerts are configured.

    With no block the hook would send nothing, yet Prefect would print two lines about
    running it under every failure; a block saved later still reaches deployments' runs,
    which keep the hook.
    """
    if alerts_configured():
        return flow
    quiet = flow.with_options()
    # with_options keeps the hooks when given empty lists (flows/engine.py does the same).
    quiet.on_failure_hooks = [h for h in quiet.on_failure_hooks if h is not notify_failure]
    quiet.on_crashed_hooks = [h for h in quiet.on_crashed_hooks if h is not notify_failure]
    return quiet


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: post the failed or crashed run and its error via the alerts block; never raises.

    Sends nothing when no alerts block is saved, or when a failure automation on the server
    watches this run's deployment (it will send the alert, and one message is enough).
    """
    try:
        from prefect.blocks.notifications import CustomWebhookNotificationBlock
        from prefect.client.orchestration import get_client

        try:
            block = CustomWebhookNotificationBlock.load(BLOCK_NAME, validate=False)
        except ValueError:  # never installed: `houseprice alerts install` saves it
            logger.info("alerts: no %r block saved, so no failure alert sent", BLOCK_NAME)
            return
        if flow_run.deployment_id is not None:
            with get_client(sync_client=True) as client:
                if _watched_by_automation(client, flow_run.deployment_id):
                    return
        subject, body = failure_message(flow.name, flow_run, state)
        block.notify(body, subject=subject)
        logger.info("alerts: failure alert for flow run %s sent", flow_run.name)
    except Exception as error:  # a hook that raises would hide the run's own error
        logger.warning("alerts: failure alert not sent: %s: %s", type(error).__name__, error)
