package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/notionsync/notionsync/config"
	"github.com/notionsync/notionsync/internal/app"
	"github.com/notionsync/notionsync/internal/keyspace"
	"github.com/notionsync/notionsync/internal/notionfake"
	"github.com/notionsync/notionsync/internal/redistest"
	"github.com/notionsync/notionsync/tokens"
)

var redisSrv *redistest.Server

func TestMain(m *testing.M) {
	code := redistest.RunMain(m, redistest.Options{}, func(s *redistest.Server) { redisSrv = s })
	stopCluster()
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const adminToken = "test-admin-token-0123456789"

func env(t *testing.T, db string) map[string]string {
	fake, hs := notionfake.NewTest(t, notionfake.Options{})
	return map[string]string{
		"NOTIONSYNC_REDIS_URL":            "redis://" + redisSrv.Addr() + "/" + db,
		"NOTIONSYNC_REDIS_KEY_PREFIX":     redistest.UniquePrefix(t),
		"NOTIONSYNC_TOKEN_KEYS":           "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"NOTIONSYNC_NOTION_CLIENT_ID":     fake.ClientID(),
		"NOTIONSYNC_NOTION_CLIENT_SECRET": fake.ClientSecret(),
		"NOTIONSYNC_NOTION_API_URL":       hs.URL,
		"NOTIONSYNC_ADMIN_TOKEN":          adminToken,
		"NOTIONSYNC_SINK_URL":             "file://" + t.TempDir(),
		"NOTIONSYNC_LOG_LEVEL":            "warn",
	}
}

// waitHTTP polls url until it answers 200 (the process is up).
func waitHTTP(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("process exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in 20s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting for an HTTP server to bind
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.SetBasicAuth("admin", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The scheduler process serves the control plane with the real asynqmon
// behind the admin check, metrics only on its metrics listener, and stops
// cleanly when its context ends.
func TestSchedulerServesAsynqmonBehindAdminCheck(t *testing.T) {
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	vars := env(t, "1")
	vars["NOTIONSYNC_CONTROL_ADDR"] = addr
	vars["NOTIONSYNC_METRICS_ADDR"] = metricsAddr
	vars["NOTIONSYNC_PUBLIC_URL"] = "http://" + addr
	cfg, err := config.LoadSchedulerFrom(config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.RunScheduler(ctx, cfg, zaptest.NewLogger(t)) }()
	base := "http://" + addr
	waitHTTP(t, base+"/readyz", done)

	if code, _ := get(t, base+app.AsynqmonPath+"/", ""); code != http.StatusUnauthorized {
		t.Fatalf("asynqmon without credential: %d, want 401", code)
	}
	if code, _ := get(t, base+app.AsynqmonPath+"/", "wrong-token-wrong-token"); code != http.StatusUnauthorized {
		t.Fatalf("asynqmon with a wrong credential: %d, want 401", code)
	}
	code, body := get(t, base+app.AsynqmonPath+"/", adminToken)
	if code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("asynqmon UI: %d %.200s", code, body)
	}
	code, body = get(t, base+app.AsynqmonPath+"/api/queues", adminToken)
	if code != http.StatusOK || !strings.Contains(body, "queues") {
		t.Fatalf("asynqmon API: %d %.200s", code, body)
	}
	// An anonymous visitor of the control port gets no metrics ...
	code, body = get(t, base+"/metrics", "")
	if code != http.StatusNotFound || strings.Contains(body, "notionsync_") {
		t.Fatalf("metrics on the control port: %d %.200s, want 404", code, body)
	}
	// ... the metrics listener serves them.
	code, body = get(t, "http://"+metricsAddr+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, "notionsync_") {
		t.Fatalf("metrics on the metrics listener: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunScheduler: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("scheduler did not stop within 20s")
	}
}

// The worker process serves health and metrics and stops cleanly.
func TestWorkerStartsAndStops(t *testing.T) {
	addr := freeAddr(t)
	vars := env(t, "2")
	vars["NOTIONSYNC_HTTP_ADDR"] = addr
	cfg, err := config.LoadWorkerFrom(config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.RunWorker(ctx, cfg, zaptest.NewLogger(t)) }()
	waitHTTP(t, "http://"+addr+"/readyz", done)
	if code, _ := get(t, "http://"+addr+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWorker: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("worker did not stop in time")
	}
}

// A bad configuration value is a clear error naming the variable.
func TestBadConfigNamesTheVariable(t *testing.T) {
	vars := env(t, "3")
	vars["NOTIONSYNC_WORKER_CONCURRENCY"] = "lots"
	_, err := config.LoadWorkerFrom(config.MapLookup(vars))
	if err == nil || !strings.Contains(err.Error(), "NOTIONSYNC_WORKER_CONCURRENCY") {
		t.Fatalf("err = %v", err)
	}
}

// A connection that becomes needs_reauth in any process (here: a store
// standing in for a worker) gets exactly one outbound webhook, even with
// two scheduler replicas listening.
func TestNeedsReauthWebhookFromAnyProcess(t *testing.T) {
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ConnectionID string `json:"connection_id"`
			Reason       string `json:"reason"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body.ConnectionID + "/" + body.Reason
	}))
	defer recv.Close()
	vars := env(t, "4")
	vars["NOTIONSYNC_WEBHOOK_URL"] = recv.URL
	vars["NOTIONSYNC_WEBHOOK_SECRET"] = "webhook-secret-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dones []chan error
	for range 2 {
		addr := freeAddr(t)
		v := maps.Clone(vars)
		v["NOTIONSYNC_CONTROL_ADDR"] = addr
		v["NOTIONSYNC_METRICS_ADDR"] = freeAddr(t)
		v["NOTIONSYNC_PUBLIC_URL"] = "http://" + addr
		cfg, err := config.LoadSchedulerFrom(config.MapLookup(v))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- app.RunScheduler(ctx, cfg, zaptest.NewLogger(t)) }()
		waitHTTP(t, "http://"+addr+"/readyz", done)
		dones = append(dones, done)
	}
	// A "worker" marks two connections needs_reauth.
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: 4})
	defer rdb.Close()
	kr, _ := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: make([]byte, 32)})
	st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: vars["NOTIONSYNC_REDIS_KEY_PREFIX"]})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := st.Connect(ctx, id, &tokens.Grant{AccessToken: "a-" + id, RefreshToken: "r-" + id}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The notifiers subscribe right after startup; wait until both listen.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := rdb.PubSubNumSub(ctx, st.NotificationChannel()).Result()
		if n[st.NotificationChannel()] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedulers' notifiers did not subscribe")
		}
		time.Sleep(10 * time.Millisecond) // polling Redis, bounded
	}
	for _, id := range []string{"c1", "c2"} {
		if err := st.MarkNeedsReauth(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	for range 2 {
		select {
		case s := <-got:
			seen[s]++
		case <-time.After(15 * time.Second):
			t.Fatalf("webhooks received: %v", seen)
		}
	}
	if seen["c1/operator"] != 1 || seen["c2/operator"] != 1 {
		t.Fatalf("webhooks: %v, want one each for c1 and c2", seen)
	}
	// The "sent once" marker is a per-connection key: in the connection's
	// shard (internal/keyspace), so it is on the connection's cluster slot.
	for _, id := range []string{"c1", "c2"} {
		pattern := keyspace.Conn(vars["NOTIONSYNC_REDIS_KEY_PREFIX"], id) + "reauth-notified:" + id + ":*"
		if keys, err := rdb.Keys(ctx, pattern).Result(); err != nil || len(keys) != 1 {
			t.Fatalf("keys %s: %v (%v), want one", pattern, keys, err)
		}
	}
	cancel()
	for _, d := range dones {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-got:
		t.Fatalf("a duplicate webhook arrived: %s", s)
	default:
	}
}

// Per-connection metric labels are off by default (they name every
// connection id, and each is a time series); NOTIONSYNC_METRICS_CONNECTION_LABELS
// turns them on.
func TestSchedulerMetricsConnectionLabels(t *testing.T) {
	for _, c := range []struct {
		name, setting string
		want          bool
	}{{"default", "", false}, {"on", "true", true}} {
		t.Run(c.name, func(t *testing.T) {
			addr, metricsAddr := freeAddr(t), freeAddr(t)
			vars := env(t, "5")
			vars["NOTIONSYNC_CONTROL_ADDR"] = addr
			vars["NOTIONSYNC_METRICS_ADDR"] = metricsAddr
			vars["NOTIONSYNC_PUBLIC_URL"] = "http://" + addr
			if c.setting != "" {
				vars["NOTIONSYNC_METRICS_CONNECTION_LABELS"] = c.setting
			}
			cfg, err := config.LoadSchedulerFrom(config.MapLookup(vars))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: 5})
			defer rdb.Close()
			kr, _ := tokens.NewKeyring(tokens.Key{ID: "k1", Secret: make([]byte, 32)})
			st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: vars["NOTIONSYNC_REDIS_KEY_PREFIX"]})
			if err != nil {
				t.Fatal(err)
			}
			const connID = "tenant-acme-7"
			if _, err := st.Connect(ctx, connID, &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- app.RunScheduler(ctx, cfg, zaptest.NewLogger(t)) }()
			waitHTTP(t, "http://"+metricsAddr+"/metrics", done)
			_, body := get(t, "http://"+metricsAddr+"/metrics", "")
			if !strings.Contains(body, "notionsync_sync_lag_max_seconds") {
				t.Fatalf("no aggregate lag series in %.300s", body)
			}
			if got := strings.Contains(body, connID); got != c.want {
				t.Errorf("metrics name the connection id: %v, want %v", got, c.want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A worker whose NOTIONSYNC_TOKEN_KEYS cannot open the stored tokens is
// alive but not ready, and its readiness body and log name the key id.
func TestWorkerReadinessChecksTheKeyring(t *testing.T) {
	other := make([]byte, 32)
	other[0] = 1
	for _, c := range []struct {
		name      string
		sealWith  tokens.Key // the key the stored record was written with
		wantReady bool
		wantKeyID string
	}{
		{"the configured key", tokens.Key{ID: "k1", Secret: make([]byte, 32)}, true, ""},
		{"a key id not configured", tokens.Key{ID: "retired-2025", Secret: other}, false, "retired-2025"},
		{"other material under the same id", tokens.Key{ID: "k1", Secret: other}, false, "k1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := freeAddr(t)
			vars := env(t, "6")
			vars["NOTIONSYNC_HTTP_ADDR"] = addr
			cfg, err := config.LoadWorkerFrom(config.MapLookup(vars))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DB: 6})
			defer rdb.Close()
			kr, _ := tokens.NewKeyring(c.sealWith)
			st, err := tokens.NewStore(tokens.StoreConfig{Redis: rdb, Keyring: kr, KeyPrefix: vars["NOTIONSYNC_REDIS_KEY_PREFIX"]})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Connect(ctx, "c1", &tokens.Grant{AccessToken: "a", RefreshToken: "r"}, tokens.Timing{}, tokens.ConnectOptions{}); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.InfoLevel)
			done := make(chan error, 1)
			go func() { done <- app.RunWorker(ctx, cfg, zap.New(core)) }()
			base := "http://" + addr
			waitHTTP(t, base+"/healthz", done)
			code, body := get(t, base+"/readyz", "")
			if ready := code == http.StatusOK; ready != c.wantReady {
				t.Fatalf("readyz %d %q, want ready=%v", code, body, c.wantReady)
			}
			if !c.wantReady {
				if code != http.StatusServiceUnavailable || !strings.Contains(body, `"`+c.wantKeyID+`"`) {
					t.Errorf("readyz %d %q, want 503 naming key id %q", code, body, c.wantKeyID)
				}
				lines := logs.FilterField(zap.String("key_id", c.wantKeyID)).FilterLevelExact(zapcore.WarnLevel).All()
				if len(lines) != 1 {
					t.Errorf("%d warn lines name key id %q, want 1", len(lines), c.wantKeyID)
				}
				// A second probe is served from the cache, and not logged again.
				if code, _ := get(t, base+"/readyz", ""); code != http.StatusServiceUnavailable {
					t.Errorf("second readyz %d", code)
				}
				if n := logs.FilterField(zap.String("key_id", c.wantKeyID)).Len(); n != 1 {
					t.Errorf("%d lines after a second probe, want 1", n)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// NOTIONSYNC_NOTION_WEBHOOK_SETUP mounts the inbound Notion webhook before a
// verification token is configured, so the scheduler process can receive
// Notion's one-time verification request and an operator can reveal it.
// Without it (and without a token) the endpoint does not exist.
func TestSchedulerNotionWebhookSetupMode(t *testing.T) {
	const verification = "secret_verification0123456789abcdef"
	for _, setup := range []bool{false, true} {
		t.Run(fmt.Sprintf("setup=%v", setup), func(t *testing.T) {
			addr, metricsAddr := freeAddr(t), freeAddr(t)
			vars := env(t, "1")
			vars["NOTIONSYNC_CONTROL_ADDR"] = addr
			vars["NOTIONSYNC_METRICS_ADDR"] = metricsAddr
			vars["NOTIONSYNC_PUBLIC_URL"] = "http://" + addr
			vars["NOTIONSYNC_NOTION_WEBHOOK_SETUP"] = strconv.FormatBool(setup)
			cfg, err := config.LoadSchedulerFrom(config.MapLookup(vars))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- app.RunScheduler(ctx, cfg, zaptest.NewLogger(t)) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("RunScheduler: %v", err)
				}
			}()
			base := "http://" + addr
			waitHTTP(t, base+"/readyz", done)

			resp, err := http.Post(base+"/webhooks/notion", "application/json",
				strings.NewReader(`{"verification_token":"`+verification+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := http.StatusNotFound
			if setup {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("verification request: %d, want %d", resp.StatusCode, want)
			}
			if !setup {
				return
			}
			req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/webhooks/notion/verification-token", nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), verification) {
				t.Fatalf("reveal: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// An unreachable Redis is one error that names NOTIONSYNC_REDIS_URL and its
// address (never its password), and go-redis's own log lines go to the
// process logger (debug) instead of raw lines on stderr before it.
func TestUnreachableRedisNamesTheVariable(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	app.SetRedisLogger(zap.New(core))
	addr := freeAddr(t) // closed again: nothing listens there
	vars := env(t, "5")
	vars["NOTIONSYNC_REDIS_URL"] = "redis://:s3cret-pw@" + addr + "/0"
	cfg, err := config.LoadWorkerFrom(config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	err = app.RunWorker(t.Context(), cfg, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "NOTIONSYNC_REDIS_URL ("+addr+")") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("RunWorker with an unreachable Redis: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("the error shows the Redis password: %v", err)
	}
	dials := logs.FilterLoggerName("go-redis").FilterMessageSnippet("failed to dial")
	if dials.Len() == 0 {
		t.Fatalf("go-redis's dial failures did not reach the zap logger; got %v", logs.All())
	}
	if lvl := dials.All()[0].Level; lvl != zap.DebugLevel {
		t.Fatalf("go-redis line logged at %v, want debug", lvl)
	}
}
