package metrics_test

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/notionsync/notionsync/internal/redistest"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	// asynq keys have no prefix: queue tests take a database each.
	code := redistest.RunMain(m, redistest.Options{Args: []string{"--databases", "64"}},
		func(s *redistest.Server) { redisSrv = s })
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// series reads every sample g exposes, keyed `name{label="value",...}`;
// a histogram contributes name_count and name_sum.
func series(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(labels)
			key := func(suffix string) string {
				k := mf.GetName() + suffix
				if len(labels) > 0 {
					k += "{" + strings.Join(labels, ",") + "}"
				}
				return k
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key("")] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("unexpected metric type of %s", mf.GetName())
			}
		}
	}
	return out
}

// changed returns the samples that differ between before and after.
func changed(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if dv := v - before[k]; dv != 0 {
			d[k] = dv
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			d[k] = -v
		}
	}
	return d
}

// sameSamples reports the differences between got and want (with a small
// tolerance for float sums).
func sameSamples(got, want map[string]float64) string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (want %v)", k, w))
		} else if math.Abs(g-w) > 1e-9 {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %s = %v", k, g))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}
