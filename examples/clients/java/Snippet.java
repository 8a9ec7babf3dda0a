// Vitals from Java with the JDK only (11+): OTLP/HTTP JSON spans and a StatsD timer.
// (The OpenTelemetry Java SDK works the same way as the Python and Node snippets; it was not run
// here because its jars come from Maven Central, which this machine cannot reach.)
//
//   VITALS_URL=http://127.0.0.1:3000 java Snippet.java
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

public class Snippet {
    static String env(String key, String fallback) {
        String v = System.getenv(key);
        return v == null || v.isEmpty() ? fallback : v;
    }

    public static void main(String[] args) throws Exception {
        String url = env("VITALS_URL", "http://127.0.0.1:3000");
        int count = Integer.parseInt(env("COUNT", "5"));

        // OTLP/HTTP JSON: server spans (kind 2) become operations; service.name becomes a tag.
        List<String> spans = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long end = System.currentTimeMillis() * 1_000_000L;
            spans.add("{\"name\":\"clients.java.otlp\",\"kind\":2,\"startTimeUnixNano\":\""
                + (end - 2_000_000L) + "\",\"endTimeUnixNano\":\"" + end + "\"}");
        }
        String body = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
            + "\"value\":{\"stringValue\":\"java-snippet\"}}]},\"scopeSpans\":[{\"spans\":["
            + String.join(",", spans) + "]}]}]}";
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/v1/traces"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
        HttpResponse<String> response =
            HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IllegalStateException("OTLP export failed: " + response.statusCode() + " " + response.body());
        }

        // StatsD: a timer in milliseconds is an operation.
        String[] statsd = env("VITALS_STATSD", "127.0.0.1:8125").split(":");
        byte[] line = "clients.java.statsd:42|ms".getBytes(StandardCharsets.UTF_8);
        try (DatagramSocket socket = new DatagramSocket()) {
            InetAddress host = InetAddress.getByName(statsd[0]);
            for (int i = 0; i < count; i++) {
                socket.send(new DatagramPacket(line, line.length, host, Integer.parseInt(statsd[1])));
            }
        }
    }
}
