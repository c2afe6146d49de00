package config

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/notionsync/notionsync/internal/redistest"
)

func loadRedis(t *testing.T, env map[string]string) Redis {
	t.Helper()
	w, err := LoadWorkerFrom(MapLookup(workerEnv(env)))
	if err != nil {
		t.Fatal(err)
	}
	return w.Redis
}

func TestUniversalOptionsSingleNode(t *testing.T) {
	t.Parallel()
	o, err := loadRedis(t, nil).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Addrs, []string{"localhost:6379"}) || o.DB != 0 || o.TLSConfig != nil || o.MasterName != "" || o.Password != "" {
		t.Errorf("default options: %+v", o)
	}

	o, err = loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL": "redis://alice:pw@redis.internal:6380/3?dial_timeout=3&pool_size=7&read_timeout=2s&client_name=ns",
	}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Addrs, []string{"redis.internal:6380"}) || o.Username != "alice" || o.Password != "pw" || o.DB != 3 ||
		o.DialTimeout != 3*time.Second || o.ReadTimeout != 2*time.Second || o.PoolSize != 7 || o.ClientName != "ns" {
		t.Errorf("options from URL: %+v", o)
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	if _, ok := c.(*redis.Client); !ok {
		t.Errorf("single node gave a %T, want *redis.Client", c)
	}
}

func TestUniversalOptionsTLS(t *testing.T) {
	t.Parallel()
	r := loadRedis(t, map[string]string{"NOTIONSYNC_REDIS_URL": "rediss://:pw@cache.example.com:6380/1"})
	o, err := r.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil {
		t.Fatal("rediss:// gave no TLS config")
	}
	if o.TLSConfig.ServerName != "cache.example.com" || o.TLSConfig.MinVersion != tls.VersionTLS12 || o.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config: server name %q, min version %x, skip verify %v", o.TLSConfig.ServerName, o.TLSConfig.MinVersion, o.TLSConfig.InsecureSkipVerify)
	}
	// Each call builds a fresh tls.Config the caller may change.
	o.TLSConfig.ServerName = "changed"
	again, _ := r.UniversalOptions()
	if again.TLSConfig.ServerName != "cache.example.com" {
		t.Error("UniversalOptions shares its tls.Config between calls")
	}

	o, err = loadRedis(t, map[string]string{"NOTIONSYNC_REDIS_URL": "rediss://h:6380/0?skip_verify=true"}).UniversalOptions()
	if err != nil || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("skip_verify=true: %v, %+v", err, o)
	}
}

func TestUniversalOptionsSentinel(t *testing.T) {
	t.Parallel()
	o, err := loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL":               "redis://:masterpw@ignored:1/2",
		"NOTIONSYNC_REDIS_SENTINEL_ADDRS":    " s1:26379 , s2:26380",
		"NOTIONSYNC_REDIS_SENTINEL_MASTER":   "mymaster",
		"NOTIONSYNC_REDIS_SENTINEL_PASSWORD": "sentinelpw",
	}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Addrs, []string{"s1:26379", "s2:26380"}) || o.MasterName != "mymaster" ||
		o.SentinelPassword != "sentinelpw" || o.Password != "masterpw" || o.DB != 2 || o.TLSConfig != nil {
		t.Errorf("sentinel options: %+v", o)
	}

	o, err = loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL":             "rediss://:masterpw@ignored:1/0",
		"NOTIONSYNC_REDIS_SENTINEL_ADDRS":  "s1:26379",
		"NOTIONSYNC_REDIS_SENTINEL_MASTER": "mymaster",
	}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("sentinel TLS: %+v", o.TLSConfig)
	}
}

func TestUniversalOptionsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r       Redis
		wantVar string
	}{
		{Redis{URL: NewURL("http://h")}, "NOTIONSYNC_REDIS_URL"},
		{Redis{URL: NewURL("redis://h:1/0"), SentinelAddrs: []string{"s:1"}}, "NOTIONSYNC_REDIS_SENTINEL_MASTER"},
		{Redis{URL: NewURL("redis://h:1/0"), SentinelAddrs: []string{"s"}, SentinelMaster: "m"}, "NOTIONSYNC_REDIS_SENTINEL_ADDRS"},
		{Redis{URL: NewURL("redis://h:1/0"), SentinelPassword: NewSecret("x")}, "NOTIONSYNC_REDIS_SENTINEL_PASSWORD"},
	}
	for _, tc := range cases {
		_, err := tc.r.UniversalOptions()
		var ve *VarError
		if !errors.As(err, &ve) || ve.Var != tc.wantVar {
			t.Errorf("UniversalOptions(%+v) = %v; want a *VarError for %s", tc.r, err, tc.wantVar)
		}
	}
}

func TestUniversalOptionsCluster(t *testing.T) {
	t.Parallel()
	r := loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL":           "rediss://alice:clusterpw@ignored:1/0?pool_size=9&dial_timeout=4s",
		"NOTIONSYNC_REDIS_CLUSTER_ADDRS": " n1:7000 , n2:7001",
	})
	if !r.IsCluster() {
		t.Error("IsCluster() = false with NOTIONSYNC_REDIS_CLUSTER_ADDRS set")
	}
	o, err := r.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Addrs, []string{"n1:7000", "n2:7001"}) || !o.IsClusterMode || o.MasterName != "" ||
		o.Username != "alice" || o.Password != "clusterpw" || o.DB != 0 || o.PoolSize != 9 || o.DialTimeout != 4*time.Second {
		t.Errorf("cluster options: %+v", o)
	}
	// Each node's certificate is checked against the host dialled, not the
	// URL's (ignored) host.
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("cluster TLS: %+v", o.TLSConfig)
	}
	if w := r.Where(); w != "Redis Cluster NOTIONSYNC_REDIS_CLUSTER_ADDRS (n1:7000,n2:7001)" {
		t.Errorf("Where() = %q", w)
	}

	// One seed (a cluster's configuration endpoint) is still a cluster.
	o, err = loadRedis(t, map[string]string{"NOTIONSYNC_REDIS_CLUSTER_ADDRS": "config.cache.example:6379"}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("one cluster seed gave a %T, want *redis.ClusterClient", c)
	}
}

func TestUniversalOptionsClusterErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"cluster and sentinel", map[string]string{
			"NOTIONSYNC_REDIS_CLUSTER_ADDRS":   "n1:7000",
			"NOTIONSYNC_REDIS_SENTINEL_ADDRS":  "s1:26379",
			"NOTIONSYNC_REDIS_SENTINEL_MASTER": "m",
		}, "NOTIONSYNC_REDIS_CLUSTER_ADDRS"},
		{"cluster and sentinel master", map[string]string{
			"NOTIONSYNC_REDIS_CLUSTER_ADDRS":   "n1:7000",
			"NOTIONSYNC_REDIS_SENTINEL_MASTER": "m",
		}, "NOTIONSYNC_REDIS_CLUSTER_ADDRS"},
		{"cluster and sentinel password", map[string]string{
			"NOTIONSYNC_REDIS_CLUSTER_ADDRS":     "n1:7000",
			"NOTIONSYNC_REDIS_SENTINEL_PASSWORD": "sentinel-secret",
		}, "NOTIONSYNC_REDIS_SENTINEL_PASSWORD"},
		{"database other than 0", map[string]string{
			"NOTIONSYNC_REDIS_CLUSTER_ADDRS": "n1:7000",
			"NOTIONSYNC_REDIS_URL":           "redis://:hunter2@h:1/3",
		}, "NOTIONSYNC_REDIS_URL"},
		{"no port", map[string]string{"NOTIONSYNC_REDIS_CLUSTER_ADDRS": "n1:7000,n2"}, "NOTIONSYNC_REDIS_CLUSTER_ADDRS"},
		{"bad port", map[string]string{"NOTIONSYNC_REDIS_CLUSTER_ADDRS": "n1:70000"}, "NOTIONSYNC_REDIS_CLUSTER_ADDRS"},
		{"empty entry", map[string]string{"NOTIONSYNC_REDIS_CLUSTER_ADDRS": "n1:7000,,n2:7001"}, "NOTIONSYNC_REDIS_CLUSTER_ADDRS"},
		{"go-redis cluster URL form", map[string]string{
			"NOTIONSYNC_REDIS_URL": "redis://:hunter2@n1:7000?addr=n2:7001&addr=n3:7002",
		}, "NOTIONSYNC_REDIS_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadWorkerFrom(MapLookup(workerEnv(tc.env)))
			problems := Problems(err)
			if len(problems) != 1 || problems[0].Var != tc.wantVar {
				t.Fatalf("load: %v; want one *VarError for %s", err, tc.wantVar)
			}
			for _, secret := range []string{"hunter2", "sentinel-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a password: %v", err)
				}
			}
			// UniversalOptions on the same values fails the same way.
			r := Redis{URL: NewURL(cmp.Or(tc.env["NOTIONSYNC_REDIS_URL"], "redis://h:1/0")),
				ClusterAddrs: splitNonNil(tc.env["NOTIONSYNC_REDIS_CLUSTER_ADDRS"]), SentinelAddrs: splitNonNil(tc.env["NOTIONSYNC_REDIS_SENTINEL_ADDRS"]),
				SentinelMaster: tc.env["NOTIONSYNC_REDIS_SENTINEL_MASTER"], SentinelPassword: NewSecret(tc.env["NOTIONSYNC_REDIS_SENTINEL_PASSWORD"])}
			_, err = r.UniversalOptions()
			var ve *VarError
			if !errors.As(err, &ve) || ve.Var != tc.wantVar {
				t.Errorf("UniversalOptions: %v; want a *VarError for %s", err, tc.wantVar)
			}
		})
	}
}

func splitNonNil(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// The tests below talk to real redis-server processes.

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs redis-server with args until the test ends and returns once
// port accepts connections.
func startRedis(t *testing.T, port int, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required for this test: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	out, err := os.Create(filepath.Join(cmd.Dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = out.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("redis-server %v exited: %v\n%s", args, err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("redis-server %v not listening on %d after 10s\n%s", args, port, log)
		}
	}
}

func redisArgs(port int, extra ...string) []string {
	return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
}

func connect(t *testing.T, o *redis.UniversalOptions) redis.UniversalClient {
	t.Helper()
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisSingleNodeLive(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startRedis(t, port, redisArgs(port, "--requirepass", "masterpw")...)
	o, err := loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL": fmt.Sprintf("redis://:masterpw@127.0.0.1:%d/2", port),
	}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := connect(t, o)
	if err := c.Set(ctx, "probe", "db2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The value landed in database 2.
	direct := connect(t, &redis.UniversalOptions{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Password: "masterpw", DB: 2})
	if got, err := direct.Get(ctx, "probe").Result(); err != nil || got != "db2" {
		t.Errorf("GET in db 2 = %q, %v", got, err)
	}
}

func TestRedisTLSLive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	port := freePort(t)
	startRedis(t, port, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", certFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no")
	r := loadRedis(t, map[string]string{"NOTIONSYNC_REDIS_URL": fmt.Sprintf("rediss://127.0.0.1:%d/0", port)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The certificate is verified against the URL's host: with the CA
	// trusted, the connection works ...
	o, err := r.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	o.TLSConfig.RootCAs = pool
	if err := connect(t, o).Ping(ctx).Err(); err != nil {
		t.Fatalf("PING over TLS: %v", err)
	}
	// ... and without it, verification fails.
	o, _ = r.UniversalOptions()
	o.MaxRetries = -1
	var unknownCA x509.UnknownAuthorityError
	if err := connect(t, o).Ping(ctx).Err(); !errors.As(err, &unknownCA) {
		t.Errorf("PING with an untrusted certificate: %v; want x509.UnknownAuthorityError", err)
	}
	// A plain redis:// client cannot talk to the TLS port.
	plain := connect(t, &redis.UniversalOptions{Addrs: o.Addrs, MaxRetries: -1})
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("plain PING to the TLS port succeeded")
	}
}

func TestRedisSentinelLive(t *testing.T) {
	t.Parallel()
	masterPort, sentinelPort := freePort(t), freePort(t)
	startRedis(t, masterPort, redisArgs(masterPort, "--requirepass", "masterpw")...)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	content := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass sentinelpw\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel auth-pass mymaster masterpw\n", sentinelPort, dir, masterPort)
	if err := os.WriteFile(conf, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	startRedis(t, sentinelPort, conf, "--sentinel")

	o, err := loadRedis(t, map[string]string{
		"NOTIONSYNC_REDIS_URL":               "redis://:masterpw@/1",
		"NOTIONSYNC_REDIS_SENTINEL_ADDRS":    fmt.Sprintf("127.0.0.1:%d", sentinelPort),
		"NOTIONSYNC_REDIS_SENTINEL_MASTER":   "mymaster",
		"NOTIONSYNC_REDIS_SENTINEL_PASSWORD": "sentinelpw",
	}).UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := connect(t, o)
	if err := c.Set(ctx, "probe", "via-sentinel", 0).Err(); err != nil {
		t.Fatalf("SET through Sentinel: %v", err)
	}
	direct := connect(t, &redis.UniversalOptions{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", masterPort)}, Password: "masterpw", DB: 1})
	if got, err := direct.Get(ctx, "probe").Result(); err != nil || got != "via-sentinel" {
		t.Errorf("GET on the master's db 1 = %q, %v", got, err)
	}

	// A wrong Sentinel password is refused: the Sentinel credentials are
	// really used.
	o.SentinelPassword = "wrong"
	o.MaxRetries = -1
	if err := connect(t, o).Ping(ctx).Err(); err == nil {
		t.Error("PING with a wrong Sentinel password succeeded")
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key to dir.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "notionsync test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestRedisClusterLive(t *testing.T) {
	t.Parallel()
	cl := redistest.StartClusterTB(t, redistest.ClusterOptions{Replicas: -1})
	// One seed is enough: the client discovers the other masters.
	r := loadRedis(t, map[string]string{"NOTIONSYNC_REDIS_CLUSTER_ADDRS": cl.Addrs()[0]})
	o, err := r.UniversalOptions()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, o)
	// Keys of slots owned by different masters are each written to their
	// own master: the client routes by slot.
	seen := map[string]bool{}
	for _, key := range []string{"{a}probe", "{b}probe", "{c}probe"} {
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		m, err := cl.MasterOf(ctx, int(slot))
		if err != nil {
			t.Fatal(err)
		}
		direct := m.Client()
		got, err := direct.Get(ctx, key).Result()
		_ = direct.Close()
		if err != nil || got != "v" {
			t.Errorf("GET %s on its master %s = %q, %v", key, m.Addr(), got, err)
		}
		seen[m.Addr()] = true
	}
	if len(seen) != 3 {
		t.Errorf("tags of slots 15495, 3300 and 7365 landed on %d master(s); want 3", len(seen))
	}
}
