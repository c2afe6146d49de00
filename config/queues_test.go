package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseQueueWeights(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   string
		want QueueWeights
	}{
		{"tokens=6,sync=3,backfill=1", QueueWeights{"tokens": 6, "sync": 3, "backfill": 1}},
		{" tokens = 6 , sync=3 ", QueueWeights{"tokens": 6, "sync": 3}},
		{"only=100", QueueWeights{"only": 100}},
		{"a.b:c-d_e=1", QueueWeights{"a.b:c-d_e": 1}},
	}
	for _, tc := range good {
		got, err := ParseQueueWeights(tc.in)
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParseQueueWeights(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "no queues"},
		{"tokens", `entry 1 "tokens": want name=weight`},
		{"tokens=6,", "entry 2 is empty"},
		{"=6", `entry 1: queue name "" must be 1 to 64 characters`},
		{"to kens=6", `queue name "to kens"`},
		{strings.Repeat("q", 65) + "=1", "must be 1 to 64 characters"},
		{"tokens=0", `entry 1: weight "0" of queue "tokens" must be an integer from 1 to 100`},
		{"tokens=-1", `weight "-1"`},
		{"tokens=101", `weight "101"`},
		{"tokens=1.5", `weight "1.5"`},
		{"tokens=99999999999999999999999", "must be an integer from 1 to 100"},
		{"a=1,a=2", `entry 2: queue "a" already listed in entry 1`},
		{"a=0,b", `entry 1: weight "0" of queue "a" must be an integer from 1 to 100; entry 2 "b": want name=weight`},
		{strings.Repeat("x", 200), `x"...: want name=weight`},
	}
	for _, tc := range bad {
		_, err := ParseQueueWeights(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseQueueWeights(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestQueueWeightsString(t *testing.T) {
	t.Parallel()
	q := QueueWeights{"sync": 3, "tokens": 6, "backfill": 1, "audit": 1}
	if got, want := q.String(), "tokens=6,sync=3,audit=1,backfill=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := q.Names(); !slices.Equal(got, []string{"tokens", "sync", "audit", "backfill"}) {
		t.Errorf("Names() = %v", got)
	}
	// It converts to the map type asynq.Config.Queues takes.
	var _ map[string]int = q
}

func FuzzParseQueueWeights(f *testing.F) {
	for _, seed := range []string{
		"tokens=6,sync=3,backfill=1", "", "a", "a=", "=1", "a=1,a=1", "a=1,,b=2", " a = 1 ",
		"a=100", "a=101", "a=-0", "a=+5", "a=0x10", "é=1", "a=1\x00", strings.Repeat("a=1,", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQueueWeights(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if q != nil {
				t.Fatal("weights returned with an error")
			}
			return
		}
		if len(q) == 0 {
			t.Fatalf("ParseQueueWeights(%q) succeeded with no queues", s)
		}
		for name, w := range q {
			if !validQueueName(name) || w < 1 || w > MaxQueueWeight {
				t.Fatalf("bad queue %q=%d from %q", name, w, s)
			}
		}
		again, err := ParseQueueWeights(q.String())
		if err != nil || !maps.Equal(again, q) {
			t.Fatalf("round trip of %q via %q: %v, %v", s, q.String(), again, err)
		}
	})
}

func TestQueueShards(t *testing.T) {
	t.Parallel()
	w, err := LoadWorkerFrom(MapLookup(workerEnv(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if w.QueueShards != 1 {
		t.Errorf("default NOTIONSYNC_QUEUE_SHARDS = %d, want 1 (today's queue names)", w.QueueShards)
	}
	w, err = LoadWorkerFrom(MapLookup(workerEnv(map[string]string{"NOTIONSYNC_QUEUE_SHARDS": "3"})))
	if err != nil || w.QueueShards != 3 {
		t.Fatalf("NOTIONSYNC_QUEUE_SHARDS=3: %v, %+v", err, w)
	}
	for _, bad := range []string{"0", "65", "-1", "x"} {
		_, err := LoadWorkerFrom(MapLookup(workerEnv(map[string]string{"NOTIONSYNC_QUEUE_SHARDS": bad})))
		p := Problems(err)
		if len(p) != 1 || p[0].Var != "NOTIONSYNC_QUEUE_SHARDS" {
			t.Errorf("NOTIONSYNC_QUEUE_SHARDS=%s: %v; want one error naming the variable", bad, err)
		}
	}
}
