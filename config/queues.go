package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxQueueWeight bounds a queue weight. asynq expands weights into a list of
// sum(weights) queue names on every dequeue, so weights are small numbers
// that only matter relative to each other.
const MaxQueueWeight = 100

// MaxQueueShards bounds NOTIONSYNC_QUEUE_SHARDS: connections are split into
// 64 shards (internal/keyspace), so more parts would stay empty.
const MaxQueueShards = 64

const varQueueShards = Prefix + "QUEUE_SHARDS"

// maxQueueNameLen bounds a queue name.
const maxQueueNameLen = 64

// QueueWeights is the parsed NOTIONSYNC_WORKER_QUEUES: asynq queue name to
// priority weight. A queue with weight 6 is polled six times as often as one
// with weight 1. It is shaped like asynq.Config.Queues (map[string]int) and
// converts to it directly.
type QueueWeights map[string]int

// ParseQueueWeights parses "name=weight,name=weight". Names are 1 to 64
// characters of A-Z, a-z, 0-9, _, -, . and :; each appears once; weights are
// integers from 1 to MaxQueueWeight. Spaces around entries, names and weights
// are ignored. The error lists every bad entry.
func ParseQueueWeights(s string) (QueueWeights, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no queues: want name=weight[,name=weight...]")
	}
	entries := strings.Split(s, ",")
	out := make(QueueWeights, len(entries))
	firstUse := make(map[string]int, len(entries))
	var problems []string
	for i, entry := range entries {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			problems = append(problems, fmt.Sprintf("entry %d is empty", n))
			continue
		}
		name, weight, ok := strings.Cut(entry, "=")
		if !ok {
			problems = append(problems, fmt.Sprintf("entry %d %s: want name=weight", n, quoteShort(entry)))
			continue
		}
		name, weight = strings.TrimSpace(name), strings.TrimSpace(weight)
		if !validQueueName(name) {
			problems = append(problems, fmt.Sprintf("entry %d: queue name %s must be 1 to %d characters of A-Z, a-z, 0-9, _, -, . and :", n, quoteShort(name), maxQueueNameLen))
			continue
		}
		if prev, dup := firstUse[name]; dup {
			problems = append(problems, fmt.Sprintf("entry %d: queue %q already listed in entry %d", n, name, prev))
			continue
		}
		firstUse[name] = n
		w, err := strconv.Atoi(weight)
		if err != nil || w < 1 || w > MaxQueueWeight {
			problems = append(problems, fmt.Sprintf("entry %d: weight %s of queue %q must be an integer from 1 to %d", n, quoteShort(weight), name, MaxQueueWeight))
			continue
		}
		out[name] = w
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// validQueueName reports whether name is 1 to 64 characters of
// [A-Za-z0-9_.:-].
func validQueueName(name string) bool {
	if name == "" || len(name) > maxQueueNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// quoteShort quotes s, cut to a readable length.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

// UnmarshalText parses text with ParseQueueWeights.
func (q *QueueWeights) UnmarshalText(text []byte) error {
	parsed, err := ParseQueueWeights(string(text))
	if err != nil {
		return err
	}
	*q = parsed
	return nil
}

// Names returns the queue names, heaviest first (ties by name).
func (q QueueWeights) Names() []string {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(q[b], q[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return names
}

// String returns the weights in the form ParseQueueWeights reads, heaviest
// first: "tokens=6,sync=3,backfill=1".
func (q QueueWeights) String() string {
	parts := make([]string, 0, len(q))
	for _, name := range q.Names() {
		parts = append(parts, name+"="+strconv.Itoa(q[name]))
	}
	return strings.Join(parts, ",")
}
