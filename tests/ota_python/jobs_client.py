"""An independent Jobs client: the AWS IoT Device SDK v2 for Python (`awsiotsdk`, awscrt MQTT)
takes one job through the otastream gateway.

usage: jobs_client.py <host> <port> <thing> [<ca.pem> <cert.pem> <key.pem>]

Plain TCP with client id = thing name, or mutual TLS when the three PEM paths are given (the
certificate's CN names the thing). Subscribes to notify-next and to the accepted/rejected answers,
prints READY, then waits for the job to be announced, reads it with $next/get (describe
"$next"), starts it (start-next with statusDetails), updates it to SUCCEEDED with the version
it got, waits for the notify-next that says nothing is pending, and prints one JSON line.
"""

import json
import queue
import sys

from awscrt import io, mqtt
from awsiot import iotjobs

TIMEOUT = 20


def main():
    host, port, thing = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    bootstrap = io.ClientBootstrap.get_or_create_static_default()
    tls = None
    if len(sys.argv) == 7:
        opts = io.TlsContextOptions.create_client_with_mtls_from_path(sys.argv[5], sys.argv[6])
        opts.override_default_trust_store_from_path(None, sys.argv[4])
        tls = io.ClientTlsContext(opts)
    client = mqtt.Client(bootstrap, tls)
    conn = mqtt.Connection(client, host, port, thing, clean_session=True, keep_alive_secs=30)
    conn.connect().result(TIMEOUT)
    jobs = iotjobs.IotJobsClient(conn)
    events = queue.Queue()
    qos = mqtt.QoS.AT_LEAST_ONCE

    def on(kind):
        return lambda message: events.put((kind, message))

    def subscribe(method, request, kind):
        future, _ = method(request=request, qos=qos, callback=on(kind))
        future.result(TIMEOUT)

    subscribe(jobs.subscribe_to_next_job_execution_changed_events,
              iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing), "notify-next")
    describe = iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id="$next")
    subscribe(jobs.subscribe_to_describe_job_execution_accepted, describe, "describe")
    subscribe(jobs.subscribe_to_describe_job_execution_rejected, describe, "rejected")
    start = iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing)
    subscribe(jobs.subscribe_to_start_next_pending_job_execution_accepted, start, "started")
    subscribe(jobs.subscribe_to_start_next_pending_job_execution_rejected, start, "rejected")
    update = iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")
    subscribe(jobs.subscribe_to_update_job_execution_accepted, update, "updated")
    subscribe(jobs.subscribe_to_update_job_execution_rejected, update, "rejected")
    print("READY", flush=True)

    def expect(kind):
        got, message = events.get(timeout=TIMEOUT)
        if got != kind:
            raise SystemExit(f"expected {kind}, got {got}: {vars(message)}")
        return message

    announced = expect("notify-next").execution
    jobs.publish_describe_job_execution(iotjobs.DescribeJobExecutionRequest(
        thing_name=thing, job_id="$next", include_job_document=True, client_token="py-describe"), qos)
    described = expect("describe")
    jobs.publish_start_next_pending_job_execution(iotjobs.StartNextPendingJobExecutionRequest(
        thing_name=thing, status_details={"client": "awsiotsdk"}, client_token="py-start"), qos)
    started = expect("started").execution
    jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=thing, job_id=started.job_id, status="SUCCEEDED",
        expected_version=started.version_number, include_job_execution_state=True,
        status_details={"client": "awsiotsdk", "result": "done"}, client_token="py-update"), qos)
    updated = expect("updated")
    after = expect("notify-next").execution
    conn.disconnect().result(TIMEOUT)
    print(json.dumps({
        "announced": announced.job_id,
        "described": described.execution.job_id,
        "document": described.execution.job_document,
        "describe_token": described.client_token,
        "started_status": started.status,
        "started_version": started.version_number,
        "updated_status": updated.execution_state.status,
        "update_token": updated.client_token,
        "pending_after": None if after is None else after.job_id,
    }), flush=True)


if __name__ == "__main__":
    main()
