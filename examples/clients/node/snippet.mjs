// Vitals from Node.js: an OTLP span through the official SDK, and a StatsD timer.
//
//   npm install && VITALS_URL=http://127.0.0.1:3000 node snippet.mjs
import dgram from "node:dgram";
import { SpanKind } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

const url = process.env.VITALS_URL ?? "http://127.0.0.1:3000";
const [statsdHost, statsdPort] = (process.env.VITALS_STATSD ?? "127.0.0.1:8125").split(":");
const count = Number(process.env.COUNT ?? 5);

// OTLP: server spans become operations; service.name becomes a tag.
const provider = new TracerProvider({
  resource: resourceFromAttributes({ "service.name": "node-snippet" }),
  spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${url}/v1/traces` }) })],
});
const tracer = provider.getTracer("snippet");
for (let i = 0; i < count; i++) {
  const span = tracer.startSpan("clients.node.otlp", { kind: SpanKind.SERVER });
  await new Promise((done) => setTimeout(done, 2));
  span.end();
}
await provider.shutdown(); // flushes the batch

// StatsD: a timer in milliseconds is an operation.
const socket = dgram.createSocket("udp4");
for (let i = 0; i < count; i++) {
  await new Promise((done) => socket.send("clients.node.statsd:42|ms", Number(statsdPort), statsdHost, done));
}
socket.close();
