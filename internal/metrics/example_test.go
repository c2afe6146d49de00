package metrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notionsync/notionsync/internal/metrics"
	"github.com/notionsync/notionsync/tokens"
)

// Attach the metrics to a component's hooks, keeping the component's own.
func ExampleMetrics_TokenHooks() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	cfg := tokens.Config{Hooks: tokens.Hooks{
		OnNeedsReauth: func(connID string, reason tokens.Reason, _ string) {
			fmt.Println("alert the owner of", connID, "reason", reason)
		},
	}}
	cfg.Hooks = m.TokenHooks(cfg.Hooks)

	// What a tokens.Source configured with cfg would report:
	cfg.Hooks.OnNeedsReauth("conn-1", tokens.ReasonRevoked, "invalid_grant")
	cfg.Hooks.OnRefresh("conn-2", tokens.OutcomeRefreshed, 300*time.Millisecond)

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "notionsync_needs_reauth_total", "notionsync_refreshes_total":
			for _, s := range mf.GetMetric() {
				if v := s.GetCounter().GetValue(); v > 0 {
					fmt.Printf("%s{%s=%q} %v\n", mf.GetName(), s.GetLabel()[0].GetName(), s.GetLabel()[0].GetValue(), v)
				}
			}
		}
	}
	// Output:
	// alert the owner of conn-1 reason revoked
	// notionsync_needs_reauth_total{reason="revoked"} 1
	// notionsync_refreshes_total{outcome="refreshed"} 1
}
