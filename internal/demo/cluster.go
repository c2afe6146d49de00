package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/notionsync/notionsync/internal/notionfake"
)

// KeyPrefix is the Redis key prefix of the cluster's processes (notionsync's
// default).
const KeyPrefix = "notionsync:"

// LeaderKey is the scheduler leader lease (package schedule): a string
// holding the leader's instance id.
const LeaderKey = KeyPrefix + "scheduler:leader"

// Paths below Options.Dir.
const (
	LogsDir    = "logs"
	SyncedDir  = "synced"
	RedisDir   = "redis"
	markerFile = ".notionsync-demo"
)

// Binary names in Options.BinDir.
const (
	WorkerBinary    = "worker"
	SchedulerBinary = "scheduler"
	SandboxBinary   = "notion-sandbox"
)

// SandboxReadyPrefix starts the line notion-sandbox prints once it listens:
// "notion-sandbox listening on http://ADDR (client_id=ID, workspace=WS)".
const SandboxReadyPrefix = "notion-sandbox listening on http://"

// Timeouts and shutdown settings the Cluster gives its processes. The
// worker's shutdown timeout must exceed the token call timeout (config), and
// Options.StopTimeout should exceed the worker's shutdown timeout.
const (
	tokenCallTimeout      = 5 * time.Second
	refreshLockTTL        = 15 * time.Second
	workerShutdownTimeout = 8 * time.Second
	httpTimeout           = 15 * time.Second
)

// WorkerShutdownTimeout is the NOTIONSYNC_SHUTDOWN_TIMEOUT the Cluster
// gives its workers: how long a worker may take to stop after SIGTERM.
const WorkerShutdownTimeout = workerShutdownTimeout

// node is a scheduler or worker: its process and HTTP address.
type node struct {
	proc *Process
	addr string // host:port
}

// Cluster is a local notionsync deployment: redis-server, notion-sandbox,
// schedulers and workers, each a child process, wired together through
// environment variables as an operator would.
//
// Start may be called once. Stop may be called at any time, more than once
// and concurrently with everything else; it ends every process the Cluster
// started. All other methods are safe for concurrent use once Start has
// returned nil; they fail or report nothing before that.
type Cluster struct {
	opts       Options
	dir        string // absolute Options.Dir
	adminToken string
	tokenKey   string // base64 AES-256 key of the token store
	client     *http.Client

	mu         sync.Mutex
	started    bool
	stopping   bool
	procs      []*Process // every process started, in start order
	redis      *Process   // nil with a Redis Cluster
	redisAddr  string     // the single node, or the first cluster node
	redisNodes []*redisNode
	rdb        redis.UniversalClient
	sandbox    *Process
	sandboxURL string
	publicURL  string
	schedulers []node
	// schedMetrics maps a scheduler's control address to its metrics
	// address (NOTIONSYNC_METRICS_ADDR), kept across restarts.
	schedMetrics map[string]string
	workers      []node
	connID       string
	// dirLock is the open, flocked marker file (see lockDir); Stop closes
	// it last.
	dirLock *os.File

	stopDone chan struct{}
	stopErr  error
}

// New validates opts and returns a Cluster that has started nothing yet.
func New(opts Options) (*Cluster, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("demo: Options.Dir: %w", err)
	}
	// The children run in Dir: a relative BinDir would be taken from there.
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return nil, fmt.Errorf("demo: Options.BinDir: %w", err)
	}
	return &Cluster{
		opts: o, dir: dir,
		adminToken: randomString(24),
		tokenKey:   base64.StdEncoding.EncodeToString(randomBytes(32)),
		client:     &http.Client{Timeout: httpTimeout},
		stopDone:   make(chan struct{}),
	}, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand crashes instead)
	return b
}

func randomString(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

// Start prepares Options.Dir and starts Redis, the sandbox, the schedulers
// and the workers, returning once each answers its readiness check. On
// error everything started is stopped again. ctx bounds the start only.
func (c *Cluster) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	if c.started || c.stopping {
		c.mu.Unlock()
		return errors.New("demo: Start called twice or after Stop")
	}
	c.started = true
	c.mu.Unlock()
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()
	if err := c.checkBinaries(); err != nil {
		return err
	}
	if err := c.prepareDir(); err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Out, "demo: starting in %s\n", c.dir)

	// Scheduler addresses come first: scheduler 0's is the public URL that
	// the sandbox allows as redirect URI and every scheduler sends.
	// Each scheduler serves its metrics on a listener of its own.
	schedAddrs := make([]string, c.opts.Schedulers)
	schedMetrics := make(map[string]string, c.opts.Schedulers)
	for i := range schedAddrs {
		port, err := freePort()
		if err != nil {
			return err
		}
		schedAddrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if port, err = freePort(); err != nil {
			return err
		}
		schedMetrics[schedAddrs[i]] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	c.mu.Lock()
	c.publicURL = "http://" + schedAddrs[0]
	c.schedMetrics = schedMetrics
	c.mu.Unlock()

	if c.opts.RedisCluster {
		nodes, err := c.startRedisCluster(ctx)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.redisNodes, c.redisAddr = nodes, nodes[0].addr
		c.mu.Unlock()
		c.mu.Lock()
		c.rdb = redis.NewUniversalClient(c.redisOptionsLocked())
		c.mu.Unlock()
		fmt.Fprintf(c.opts.Out, "demo: Redis Cluster of %d masters and %d replicas on %s\n", ClusterMasters, ClusterMasters,
			strings.Join(clusterSeeds(nodes), ","))
	} else {
		rp, raddr, err := startRedis(ctx, c.path(RedisDir), c.logPath("redis"), c.opts.StartTimeout)
		if err != nil {
			return err
		}
		if err := c.track(rp); err != nil {
			return err
		}
		c.mu.Lock()
		c.redis, c.redisAddr, c.rdb = rp, raddr, newRedisClient(raddr)
		c.mu.Unlock()
		fmt.Fprintf(c.opts.Out, "demo: redis-server on %s (pid %d)\n", raddr, rp.Pid())
	}

	if err := c.startSandbox(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.opts.Out, "demo: notion-sandbox on %s (pid %d)\n", c.sandboxURL, c.sandbox.Pid())

	scheds, err := c.startNodes(ctx, "scheduler", SchedulerBinary, schedAddrs, c.schedulerEnv)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.schedulers = scheds
	c.mu.Unlock()
	workerAddrs := make([]string, c.opts.Workers) // picked at launch
	workers, err := c.startNodes(ctx, "worker", WorkerBinary, workerAddrs, c.workerEnv)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.workers = workers
	c.mu.Unlock()
	for _, n := range append(scheds, workers...) {
		fmt.Fprintf(c.opts.Out, "demo: %s on %s (pid %d)\n", n.proc.Name(), n.addr, n.proc.Pid())
	}
	return nil
}

// checkBinaries fails early, with a hint, when a binary is missing.
func (c *Cluster) checkBinaries() error {
	var missing []string
	for _, b := range []string{SandboxBinary, SchedulerBinary, WorkerBinary} {
		if st, err := os.Stat(c.bin(b)); err != nil || st.IsDir() {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo: %s not found in %s; build them with make build (or go build -o %s/ ./cmd/...)",
			strings.Join(missing, ", "), c.opts.BinDir, c.opts.BinDir)
	}
	return nil
}

// prepareDir creates Dir with its marker and empties logs/, synced/ and
// redis/ below it.
func (c *Cluster) prepareDir() error {
	entries, err := os.ReadDir(c.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("demo: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(c.path(markerFile)); err != nil {
			return fmt.Errorf("demo: %s is not empty and was not created by the demo (no %s); choose another directory", c.dir, markerFile)
		}
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := c.lockDir(); err != nil {
		return err
	}
	for _, sub := range []string{LogsDir, SyncedDir, RedisDir} {
		if err := os.RemoveAll(c.path(sub)); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := os.MkdirAll(c.path(sub), 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

// errDirLocked is tryLock's answer when another demo holds the lock.
var errDirLocked = errors.New("locked by another process")

// lockDir writes the marker file and takes an exclusive lock on it, held
// until Stop has ended every process. A second demo in the same directory
// would otherwise empty the running one's logs, synced files and the
// append-only file under its live Redis; with the lock it is refused
// before it touches anything. The marker names the holder's pid so the
// refusal can say which process to stop.
func (c *Cluster) lockDir() error {
	f, err := os.OpenFile(c.path(markerFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := tryLock(f); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if errors.Is(err, errDirLocked) {
			who := "another demo"
			if _, pid, ok := strings.Cut(string(holder), "\npid "); ok {
				who += " (pid " + strings.TrimSpace(pid) + ")"
			}
			return fmt.Errorf("demo: %s is running in %s; stop it first (Ctrl-C in its terminal), or give this one another directory with -dir", who, c.dir)
		}
		return fmt.Errorf("demo: lock %s: %w", c.path(markerFile), err)
	}
	content := fmt.Sprintf("notionsync demo working directory; `make demo` empties logs/, synced/ and redis/ here\npid %d\n", os.Getpid())
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(content), 0)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("demo: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping { // Stop ran meanwhile and would never release it
		f.Close()
		return errors.New("demo: stopped while starting")
	}
	c.dirLock = f
	return nil
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

func (c *Cluster) logPath(name string) string { return c.path(LogsDir, name+".log") }

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.BinDir, name) }

// track records p so that Stop ends it. After Stop it kills p and fails.
func (c *Cluster) track(p *Process) error {
	c.mu.Lock()
	stopping := c.stopping
	if !stopping {
		c.procs = append(c.procs, p)
	}
	c.mu.Unlock()
	if stopping {
		p.Kill()
		return errors.New("demo: stopped while starting")
	}
	return nil
}

// ParseSandboxReady returns the address of notion-sandbox's ready line.
func ParseSandboxReady(line string) (addr string, ok bool) {
	rest, ok := strings.CutPrefix(line, SandboxReadyPrefix)
	if !ok {
		return "", false
	}
	addr, _, _ = strings.Cut(rest, " ")
	return addr, addr != ""
}

func (c *Cluster) startSandbox(ctx context.Context) error {
	life := c.opts.AccessTokenLifetime.String()
	args := append([]string{
		"-addr", "127.0.0.1:0",
		"-access-token-lifetime", life, "-expires-in", life,
		"-redirect-uri", c.publicURL + "/oauth/callback",
	}, c.opts.SandboxArgs...)
	ready := make(chan string, 1)
	var once sync.Once
	p, err := startProcess("notion-sandbox", c.bin(SandboxBinary), args, childEnv(), c.dir, c.logPath("notion-sandbox"),
		func(line string) {
			if addr, ok := ParseSandboxReady(line); ok {
				once.Do(func() { ready <- addr })
			}
		})
	if err != nil {
		return err
	}
	if err := c.track(p); err != nil {
		return err
	}
	timer := time.NewTimer(c.opts.StartTimeout)
	defer timer.Stop()
	select {
	case addr := <-ready:
		c.mu.Lock()
		c.sandbox, c.sandboxURL = p, "http://"+addr
		c.mu.Unlock()
		return nil
	case <-p.Done():
		return fmt.Errorf("demo: notion-sandbox exited before it was ready: %w (log %s)\n%s",
			p.err, p.logPath, indent(logTail(p.logPath, logTailLines)))
	case <-timer.C:
		return fmt.Errorf("demo: notion-sandbox printed no ready line within %v (log %s)", c.opts.StartTimeout, p.logPath)
	case <-ctx.Done():
		return fmt.Errorf("demo: starting notion-sandbox: %w", context.Cause(ctx))
	}
}

// startNodes starts one process per address (an empty address: a free
// port picked at launch, retried if taken meanwhile) and waits until all
// answer GET /readyz.
func (c *Cluster) startNodes(ctx context.Context, kind, binName string, addrs []string, envFor func(addr string) []string) ([]node, error) {
	nodes := make([]node, len(addrs))
	g, gctx := errgroup.WithContext(ctx)
	for i, addr := range addrs {
		g.Go(func() error {
			n, err := c.startNode(gctx, fmt.Sprintf("%s-%d", kind, i), binName, addr, envFor)
			nodes[i] = n
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return nodes, nil
}

// startNode starts one scheduler or worker on addr (empty: a free port
// picked at launch, retried if taken meanwhile) and waits until it answers
// GET /readyz. The node is returned (and tracked) even when it failed to
// become ready.
func (c *Cluster) startNode(ctx context.Context, name, binName, addr string, envFor func(addr string) []string) (node, error) {
	attempts := 1
	if addr == "" {
		attempts = portAttempts
	}
	var n node
	var err error
	for range attempts {
		a := addr
		if a == "" {
			port, perr := freePort()
			if perr != nil {
				return n, perr
			}
			a = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		var p *Process
		p, err = startProcess(name, c.bin(binName), nil, envFor(a), c.dir, c.logPath(name), nil)
		if err != nil {
			return n, err
		}
		if err := c.track(p); err != nil {
			return n, err
		}
		n = node{proc: p, addr: a}
		err = c.waitReady(ctx, p, a)
		if err == nil || !p.Exited() || !strings.Contains(logTail(p.logPath, logTailLines), "address already in use") {
			break
		}
		p.Kill() // reaped already; marks the exit as expected
	}
	return n, err
}

// waitReady polls http://addr/readyz until it answers 200.
func (c *Cluster) waitReady(ctx context.Context, p *Process, addr string) error {
	url := "http://" + addr + "/readyz"
	return poll(ctx, p, c.opts.StartTimeout, p.Name()+" /readyz", func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// childEnv is the demo's environment without NOTIONSYNC_* and
// NOTION_SANDBOX_* variables, so that settings of the user's shell do not
// leak into the cluster.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NOTIONSYNC_") || strings.HasPrefix(kv, "NOTION_SANDBOX_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// commonEnv is what schedulers and workers share.
func (c *Cluster) commonEnv() []string {
	o := c.opts
	env := childEnv()
	if len(c.redisNodes) > 0 {
		env = append(env,
			"NOTIONSYNC_REDIS_CLUSTER_ADDRS="+strings.Join(clusterSeeds(c.redisNodes), ","),
			"NOTIONSYNC_QUEUE_SHARDS="+strconv.Itoa(ClusterMasters))
	}
	return append(env,
		"NOTIONSYNC_REDIS_URL=redis://"+c.redisAddr+"/0",
		"NOTIONSYNC_TOKEN_KEYS=demo:"+c.tokenKey,
		"NOTIONSYNC_NOTION_CLIENT_ID="+notionfake.DefaultClientID,
		"NOTIONSYNC_NOTION_CLIENT_SECRET="+notionfake.DefaultClientSecret,
		"NOTIONSYNC_NOTION_API_URL="+c.sandboxURL,
		"NOTIONSYNC_NOTION_REDIRECT_URI="+c.publicURL+"/oauth/callback",
		"NOTIONSYNC_NOTION_RATE_LIMIT="+strconv.Itoa(o.RateLimit),
		"NOTIONSYNC_NOTION_RATE_BURST="+strconv.Itoa(max(1, o.RateLimit/10)),
		"NOTIONSYNC_SINK_URL=file://"+c.path(SyncedDir),
		"NOTIONSYNC_ACCESS_TOKEN_LIFETIME="+o.AccessTokenLifetime.String(),
		"NOTIONSYNC_REFRESH_MARGIN="+o.RefreshMargin.String(),
		"NOTIONSYNC_REFRESH_JITTER="+o.RefreshJitter.String(),
		"NOTIONSYNC_TOKEN_CALL_TIMEOUT="+tokenCallTimeout.String(),
		"NOTIONSYNC_REFRESH_LOCK_TTL="+refreshLockTTL.String(),
		"NOTIONSYNC_SYNC_INTERVAL="+o.SyncInterval.String(),
		"NOTIONSYNC_LOG_FORMAT=console",
		"NOTIONSYNC_LOG_LEVEL=info",
	)
}

func (c *Cluster) schedulerEnv(addr string) []string {
	o := c.opts
	c.mu.Lock()
	metricsAddr := c.schedMetrics[addr]
	c.mu.Unlock()
	env := append(c.commonEnv(),
		"NOTIONSYNC_CONTROL_ADDR="+addr,
		"NOTIONSYNC_METRICS_ADDR="+metricsAddr,
		"NOTIONSYNC_PUBLIC_URL="+c.publicURL,
		"NOTIONSYNC_ADMIN_TOKEN="+c.adminToken,
		"NOTIONSYNC_SCHEDULER_TICK="+o.SchedulerTick.String(),
		"NOTIONSYNC_LEADER_LEASE="+o.LeaderLease.String(),
	)
	return append(env, o.Env...)
}

func (c *Cluster) workerEnv(addr string) []string {
	o := c.opts
	env := append(c.commonEnv(),
		"NOTIONSYNC_HTTP_ADDR="+addr,
		"NOTIONSYNC_WORKER_CONCURRENCY="+strconv.Itoa(o.WorkerConcurrency),
		"NOTIONSYNC_SHUTDOWN_TIMEOUT="+workerShutdownTimeout.String(),
	)
	return append(env, o.Env...)
}

// Stop ends every process: SIGTERM to the workers and schedulers (the
// workers hand unfinished tasks back to Redis), then to the sandbox, then
// to Redis; each group gets Options.StopTimeout before SIGKILL. The synced
// files and logs stay in Options.Dir. It returns an error for each process
// that exited by itself (a crash), failed its graceful stop, or had to be
// killed; processes stopped or killed earlier on request are not errors.
// Later calls wait for the first and return its result.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		<-c.stopDone
		return c.stopErr
	}
	c.stopping = true
	procs := append([]*Process(nil), c.procs...)
	rdb := c.rdb
	c.mu.Unlock()

	var apps, sandbox, redisProcs []*Process
	for _, p := range procs {
		switch {
		case p.Name() == "redis" || strings.HasPrefix(p.Name(), "redis-"): // a single node or a cluster's
			redisProcs = append(redisProcs, p)
		case p.Name() == "notion-sandbox":
			sandbox = append(sandbox, p)
		default:
			apps = append(apps, p)
		}
	}
	var errs []error
	errs = append(errs, c.terminate(apps)...)
	errs = append(errs, c.terminate(sandbox)...)
	if rdb != nil {
		_ = rdb.Close()
	}
	errs = append(errs, c.terminate(redisProcs)...)
	c.client.CloseIdleConnections()
	// Only now may another demo empty the directory: every process that
	// wrote to it has ended.
	c.mu.Lock()
	if c.dirLock != nil {
		c.dirLock.Close()
		c.dirLock = nil
	}
	c.mu.Unlock()
	c.stopErr = errors.Join(errs...)
	close(c.stopDone)
	return c.stopErr
}

// terminate stops procs together and returns what went wrong.
func (c *Cluster) terminate(procs []*Process) []error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StopTimeout)
	defer cancel()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		if p.Exited() {
			if p.Unexpected() {
				errs[i] = fmt.Errorf("demo: %s had exited by itself: %v (log %s)", p.Name(), p.ExitErr(), p.LogPath())
			}
			continue
		}
		wg.Go(func() { errs[i] = p.Terminate(ctx) })
	}
	wg.Wait()
	return errs
}

// Processes returns every process the Cluster started, in start order
// (including ones that have exited).
func (c *Cluster) Processes() []*Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Process(nil), c.procs...)
}

// Worker returns worker i's process, or nil.
func (c *Cluster) Worker(i int) *Process { return c.nodeProc(&c.workers, i) }

// Scheduler returns scheduler i's process, or nil.
func (c *Cluster) Scheduler(i int) *Process { return c.nodeProc(&c.schedulers, i) }

func (c *Cluster) nodeProc(nodes *[]node, i int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(*nodes) {
		return nil
	}
	return (*nodes)[i].proc
}

// Sandbox returns the notion-sandbox process (nil before Start).
func (c *Cluster) Sandbox() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sandbox
}

// Redis returns the redis-server process (nil before Start).
func (c *Cluster) Redis() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redis
}

// KillWorker SIGKILLs worker i (a crash) and waits until it is gone.
func (c *Cluster) KillWorker(i int) error { return kill(c.Worker(i), "worker", i) }

// KillScheduler SIGKILLs scheduler i and waits until it is gone. It does
// not release the leader lease: another replica takes over when it expires.
func (c *Cluster) KillScheduler(i int) error { return kill(c.Scheduler(i), "scheduler", i) }

// StopWorker SIGTERMs worker i and waits until it has exited: it stops
// taking tasks, lets running ones finish within its shutdown timeout and
// hands the rest back. It returns an error if the worker exited with a
// non-zero status or had to be killed after Options.StopTimeout.
func (c *Cluster) StopWorker(i int) error { return c.stopNode(c.Worker(i), "worker", i) }

// StopScheduler SIGTERMs scheduler i (it releases the lease) and waits
// until it has exited, like StopWorker.
func (c *Cluster) StopScheduler(i int) error { return c.stopNode(c.Scheduler(i), "scheduler", i) }

func kill(p *Process, kind string, i int) error {
	if p == nil {
		return fmt.Errorf("demo: no %s %d", kind, i)
	}
	p.Kill()
	return nil
}

func (c *Cluster) stopNode(p *Process, kind string, i int) error {
	if p == nil {
		return fmt.Errorf("demo: no %s %d", kind, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StopTimeout)
	defer cancel()
	return p.Terminate(ctx)
}

// Leader returns the index of the scheduler that holds the leader lease,
// or -1 when none does.
//
// The lease (LeaderKey) holds the leader's schedule.Config.InstanceID.
// cmd/scheduler leaves it at its default, "<hostname>-<pid>-<random hex>",
// so the leader is the scheduler whose process id is the second field from
// the right. Right after a leader is killed the lease still names it, until
// it expires (Options.LeaderLease).
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	c.mu.Lock()
	rdb := c.rdb
	c.mu.Unlock()
	if rdb == nil {
		return -1, errors.New("demo: not started")
	}
	id, err := rdb.Get(ctx, LeaderKey).Result()
	if errors.Is(err, redis.Nil) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("demo: read the leader lease: %w", err)
	}
	pid, ok := InstancePID(id)
	if !ok {
		return -1, fmt.Errorf("demo: leader instance id %q is not <host>-<pid>-<random>", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.schedulers {
		if s.proc.Pid() == pid {
			return i, nil
		}
	}
	return -1, fmt.Errorf("demo: the leader (pid %d) is not one of this cluster's schedulers", pid)
}

// InstancePID returns the process id in a default scheduler instance id,
// "<hostname>-<pid>-<random hex>" (the hostname may contain '-').
func InstancePID(instanceID string) (int, bool) {
	parts := strings.Split(instanceID, "-")
	if len(parts) < 3 {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	return pid, err == nil && pid > 0
}

// Dir returns the absolute working directory.
func (c *Cluster) Dir() string { return c.dir }

// SyncedDir returns the file sink's root (one folder per connection).
func (c *Cluster) SyncedDir() string { return c.path(SyncedDir) }

// LogDir returns the folder of the process logs.
func (c *Cluster) LogDir() string { return c.path(LogsDir) }

// AdminToken returns the admin credential of the control plane (random per
// Cluster): Authorization: Bearer <token>, or HTTP Basic with it as
// password (asynqmon in a browser).
func (c *Cluster) AdminToken() string { return c.adminToken }

// PublicURL returns scheduler 0's base URL, the OAuth start and callback
// host of every scheduler.
func (c *Cluster) PublicURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.publicURL
}

// SchedulerURL returns scheduler i's base URL ("" if there is none).
func (c *Cluster) SchedulerURL(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.schedulers) {
		return ""
	}
	return "http://" + c.schedulers[i].addr
}

// SchedulerMetricsURL returns scheduler i's Prometheus endpoint
// (NOTIONSYNC_METRICS_ADDR + "/metrics"; "" if none). The control server
// does not serve metrics.
func (c *Cluster) SchedulerMetricsURL(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.schedulers) {
		return ""
	}
	return "http://" + c.schedMetrics[c.schedulers[i].addr] + "/metrics"
}

// WorkerAddr returns worker i's health and metrics address ("" if none).
func (c *Cluster) WorkerAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.workers) {
		return ""
	}
	return c.workers[i].addr
}

// SandboxURL returns the sandbox's base URL; its admin API is under
// /_sandbox/.
func (c *Cluster) SandboxURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sandboxURL
}

// RedisAddr returns Redis's host:port: with a Redis Cluster, the first
// node's (a seed; see RedisOptions).
func (c *Cluster) RedisAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redisAddr
}

// AsynqmonURL returns the queue dashboard on scheduler 0.
func (c *Cluster) AsynqmonURL() string { return c.PublicURL() + "/admin/asynqmon/" }

// APIURL returns the admin API's connection list on scheduler 0.
func (c *Cluster) APIURL() string { return c.PublicURL() + "/api/v1/connections" }

// ConnectionID returns the id Connect found ("" before).
func (c *Cluster) ConnectionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connID
}
