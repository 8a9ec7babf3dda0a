// Vitals from Go with the standard library only: OTLP/HTTP JSON spans and a StatsD timer.
// (The OpenTelemetry Go SDK works the same way as the Python and Node snippets; it was not run
// here because its modules come from proxy.golang.org, which this machine cannot reach.)
//
//	VITALS_URL=http://127.0.0.1:3000 go run main.go
package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func env(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	url := env("VITALS_URL", "http://127.0.0.1:3000")
	count, _ := strconv.Atoi(env("COUNT", "5"))

	// OTLP/HTTP JSON: server spans (kind 2) become operations; service.name becomes a tag.
	var spans []string
	for i := 0; i < count; i++ {
		end := time.Now().UnixNano()
		spans = append(spans, fmt.Sprintf(
			`{"name":"clients.go.otlp","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}`,
			end-2_000_000, end))
	}
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",` +
		`"value":{"stringValue":"go-snippet"}}]},"scopeSpans":[{"spans":[` +
		strings.Join(spans, ",") + `]}]}]}`
	resp, err := http.Post(url+"/v1/traces", "application/json", bytes.NewBufferString(body))
	if err != nil || resp.StatusCode != 200 {
		fmt.Fprintln(os.Stderr, "OTLP export failed:", err, resp)
		os.Exit(1)
	}

	// StatsD: a timer in milliseconds is an operation.
	conn, err := net.Dial("udp", env("VITALS_STATSD", "127.0.0.1:8125"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "StatsD:", err)
		os.Exit(1)
	}
	defer conn.Close()
	for i := 0; i < count; i++ {
		fmt.Fprint(conn, "clients.go.statsd:42|ms")
	}
}
