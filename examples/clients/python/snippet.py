"""Vitals from Python: OTLP spans and a counter through the official SDK, and a StatsD timer.

    pip install -r requirements.txt
    VITALS_URL=http://127.0.0.1:3000 python snippet.py
"""
import os
import time

import statsd
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

url = os.environ.get("VITALS_URL", "http://127.0.0.1:3000")
statsd_host, statsd_port = os.environ.get("VITALS_STATSD", "127.0.0.1:8125").split(":")
count = int(os.environ.get("COUNT", "5"))

# OTLP: server spans become operations; service.name becomes a tag.
provider = TracerProvider(resource=Resource.create({"service.name": "python-snippet"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
tracer = provider.get_tracer("snippet")
for _ in range(count):
    with tracer.start_as_current_span("clients.python.otlp", kind=trace.SpanKind.SERVER):
        time.sleep(0.002)
provider.shutdown()  # flushes the batch

# OTLP metrics: a counter (cumulative, as the SDK sends it) becomes a Vitals counter.
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{url}/v1/metrics"))
meters = MeterProvider(resource=Resource.create({"service.name": "python-snippet"}), metric_readers=[reader])
jobs = meters.get_meter("snippet").create_counter("clients.python.jobs")
jobs.add(count)
meters.shutdown()  # exports what was counted

# StatsD: a timer in milliseconds is an operation.
client = statsd.StatsClient(statsd_host, int(statsd_port))
for _ in range(count):
    client.timing("clients.python.statsd", 42.0)
