package files

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/notionsync/notionsync/sync/sink/record"
)

// DefaultAllowedHosts are the hosts Notion serves its files from: its S3
// buckets (prod-files-secure.s3.us-west-2.amazonaws.com and the like) and
// its own file domains. An entry starting with "." matches the domain's
// subdomains.
var DefaultAllowedHosts = []string{".s3.us-west-2.amazonaws.com", "s3.us-west-2.amazonaws.com", "file.notion.so", ".notion-static.com", ".notion.so"}

// Defaults of Config.
const (
	DefaultMaxFileBytes    = 1 << 30  // 1 GiB
	DefaultConnectionQuota = 50 << 30 // 50 GiB
	DefaultConcurrency     = 4
	DefaultTimeout         = 10 * time.Minute
	maxRedirects           = 3
)

// Errors; test with errors.Is.
var (
	// ErrExpired: the URL's expiry_time has passed, or the storage
	// refused it (403). Read the object again for a fresh URL.
	ErrExpired = errors.New("file URL expired")
	// ErrHostNotAllowed: the URL (or a redirect) leaves the allowed hosts
	// or schemes, or resolves to an address the downloader does not
	// connect to.
	ErrHostNotAllowed = errors.New("file host not allowed")
	// ErrTooLarge and ErrQuotaExceeded are wrapped by *LimitError.
	ErrTooLarge      = errors.New("file larger than the per-file cap")
	ErrQuotaExceeded = errors.New("connection's file quota exceeded")
)

// LimitError is a download stopped by the per-file cap or the connection's
// quota. Nothing of the file is stored.
type LimitError struct {
	// Quota is true for the connection's quota, false for the file cap.
	Quota bool
	// Limit is the bound in bytes (for the quota: what the download could
	// reserve of it).
	Limit int64
}

func (e *LimitError) Error() string {
	if e.Quota {
		return fmt.Sprintf("%v (%d bytes could be reserved)", ErrQuotaExceeded, e.Limit)
	}
	return fmt.Sprintf("%v (%d bytes)", ErrTooLarge, e.Limit)
}

func (e *LimitError) Unwrap() error {
	if e.Quota {
		return ErrQuotaExceeded
	}
	return ErrTooLarge
}

// StatusError is an unexpected HTTP answer to a download.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("file download answered HTTP %d", e.Status) }

// Permanent reports whether a download error will repeat for the same
// reference (a cap, the quota, a host not allowed, a 4xx other than 408
// and 429): the object is stored with a note instead of being retried. An
// expired URL is not permanent (read the object again), nor are network
// errors and 5xx.
func Permanent(err error) bool {
	var se *StatusError
	var le *LimitError
	switch {
	case errors.As(err, &le), errors.Is(err, ErrHostNotAllowed):
		return true
	case errors.As(err, &se):
		return se.Status >= 400 && se.Status < 500 && se.Status != http.StatusRequestTimeout && se.Status != http.StatusTooManyRequests
	}
	return false
}

// Config configures a Downloader. The zero value is usable.
type Config struct {
	// AllowedHosts are the hosts files are fetched from: "host", "host:port"
	// or ".domain" (its subdomains). Default DefaultAllowedHosts.
	AllowedHosts []string
	// AllowHTTP allows plain http URLs (the sandbox). Default false: https
	// only.
	AllowHTTP bool
	// AllowPrivateAddresses allows connecting to loopback, private and
	// link-local addresses (the sandbox). Default false.
	AllowPrivateAddresses bool
	// MaxFileBytes caps one file. Default DefaultMaxFileBytes.
	MaxFileBytes int64
	// ConnectionQuota caps the bytes of one connection's stored files.
	// Default DefaultConnectionQuota. A download reserves its declared
	// length (unknown: what is left of the quota, up to MaxFileBytes) in
	// Quota before it streams and settles to the bytes it added after, so
	// downloads running at once never pass it together. The reservation
	// is taken before the bytes' hash is known: near the quota, a copy of
	// a stored file under a new reference is refused too.
	ConnectionQuota int64
	// Quota counts each connection's bytes. Default: a counter in this
	// process, seeded from the store; workers that share a quota need a
	// shared one (NewRedisQuota).
	Quota Quota
	// Concurrency bounds the downloads in flight of this Downloader (a
	// worker), all connections together. Default DefaultConcurrency.
	Concurrency int
	// Timeout bounds one download. Default DefaultTimeout.
	Timeout time.Duration
	// Transport, when set, replaces the guarded transport (tests); the
	// redirect policy still applies.
	Transport http.RoundTripper
	// Logger; default none. Now is the clock; default time.Now.
	Logger *zap.Logger
	Now    func() time.Time
}

// Downloader fetches files into stores. Safe for concurrent use.
type Downloader struct {
	cfg    Config
	client *http.Client
	sem    chan struct{}
	log    *zap.Logger

	// flight joins concurrent downloads of one reference (two pages of a
	// connection showing the same logo, synced at once): one request.
	flight singleflight.Group
}

// New validates cfg and returns a Downloader.
func New(cfg Config) (*Downloader, error) {
	if len(cfg.AllowedHosts) == 0 {
		cfg.AllowedHosts = DefaultAllowedHosts
	}
	for _, h := range cfg.AllowedHosts {
		if h == "" || h == "." || strings.ContainsAny(h, "/?#@ ") {
			return nil, fmt.Errorf("files: allowed host %q is not a host name", h)
		}
	}
	if cfg.MaxFileBytes < 0 || cfg.ConnectionQuota < 0 || cfg.Concurrency < 0 || cfg.Timeout < 0 {
		return nil, errors.New("files: negative limit in Config")
	}
	cfg.MaxFileBytes = cmp.Or(cfg.MaxFileBytes, DefaultMaxFileBytes)
	cfg.ConnectionQuota = cmp.Or(cfg.ConnectionQuota, DefaultConnectionQuota)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Quota == nil {
		cfg.Quota = &localQuota{used: make(map[string]int64)}
	}
	d := &Downloader{cfg: cfg, sem: make(chan struct{}, cfg.Concurrency), log: cmp.Or(cfg.Logger, zap.NewNop())}
	tr := cfg.Transport
	if tr == nil {
		dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: d.checkAddress}
		tr = &http.Transport{
			Proxy:                 nil, // a proxy would dial for us: the address check must see the real peer
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
		}
	}
	d.client = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrHostNotAllowed, maxRedirects)
		}
		return d.checkURL(req.URL)
	}}
	return d, nil
}

// checkURL enforces the allowed schemes and hosts.
func (d *Downloader) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && d.cfg.AllowHTTP:
	default:
		return fmt.Errorf("%w: scheme %q", ErrHostNotAllowed, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URL with user info", ErrHostNotAllowed)
	}
	host := strings.ToLower(u.Host)
	hostname := strings.ToLower(u.Hostname())
	for _, a := range d.cfg.AllowedHosts {
		a = strings.ToLower(a)
		if a == host || a == hostname || strings.HasPrefix(a, ".") && strings.HasSuffix(hostname, a) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrHostNotAllowed, hostname)
}

// checkAddress refuses internal addresses (net.Dialer.Control: it sees the
// address actually dialled, after DNS).
func (d *Downloader) checkAddress(network, address string, _ syscall.RawConn) error {
	if d.cfg.AllowPrivateAddresses {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostNotAllowed, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%w: address %s is internal", ErrHostNotAllowed, host)
	}
	return nil
}

// Download streams ref into store as a file of connection conn referenced
// by objectID and returns the stored file. It waits for a download slot
// (Config.Concurrency). An expired reference fails with ErrExpired before
// any request. Concurrent calls for one connection and key share one
// download; a key the store holds already is not downloaded.
func (d *Downloader) Download(ctx context.Context, store record.FileStore, conn, objectID string, ref Ref) (record.FileLink, error) {
	v, err, _ := d.flight.Do(conn+"\x00"+ref.Key, func() (any, error) {
		if l, err := store.FileByKey(ctx, conn, ref.Key); err == nil {
			return l, nil
		}
		return d.download(ctx, store, conn, objectID, ref)
	})
	if err != nil {
		return record.FileLink{}, err
	}
	return v.(record.FileLink), nil
}

func (d *Downloader) download(ctx context.Context, store record.FileStore, conn, objectID string, ref Ref) (record.FileLink, error) {
	if !ref.Expiry.IsZero() && !d.cfg.Now().Before(ref.Expiry) {
		return record.FileLink{}, ErrExpired
	}
	u, err := url.Parse(ref.URL)
	if err != nil {
		return record.FileLink{}, fmt.Errorf("%w: unparsable URL", ErrHostNotAllowed)
	}
	if err := d.checkURL(u); err != nil {
		return record.FileLink{}, err
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return record.FileLink{}, ctx.Err()
	}
	defer func() { <-d.sem }()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return record.FileLink{}, fmt.Errorf("files: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		// The URL carries its signature: never put it in an error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return record.FileLink{}, fmt.Errorf("file download: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		// A presigned URL that S3 refuses has expired (or its signature
		// no longer holds): a fresh URL is the cure either way.
		return record.FileLink{}, ErrExpired
	case resp.StatusCode != http.StatusOK:
		return record.FileLink{}, &StatusError{Status: resp.StatusCode}
	case resp.ContentLength > d.cfg.MaxFileBytes:
		// A known length that breaks the cap says so, whatever the
		// quota: the file would never fit.
		return record.FileLink{}, &LimitError{Limit: d.cfg.MaxFileBytes}
	}
	// Reserve the declared length, all of it or nothing; an unknown one
	// reserves up to the cap, what is left of the quota if less. The
	// stream is cut at the reservation.
	want, partial := resp.ContentLength, false
	if want < 0 {
		want, partial = d.cfg.MaxFileBytes, true
	}
	usage := func(ctx context.Context) (int64, error) { return store.FileUsage(ctx, conn) }
	reserved, err := d.cfg.Quota.Reserve(ctx, conn, want, d.cfg.ConnectionQuota, partial, usage)
	if err != nil {
		return record.FileLink{}, err
	}
	if reserved == 0 || !partial && reserved < want {
		return record.FileLink{}, &LimitError{Quota: true, Limit: reserved}
	}
	var link record.FileLink
	defer func() {
		// Settled whatever happened (a canceled task too): the bytes a
		// put added count, the rest of the reservation is given back.
		used := int64(0)
		if link.Added {
			used = link.Size
		}
		if err := d.cfg.Quota.Settle(context.WithoutCancel(ctx), conn, reserved, used); err != nil {
			d.log.Warn("could not settle a file quota reservation", zap.String("conn_id", conn), zap.Error(err))
		}
	}()
	limitErr := &LimitError{Quota: true, Limit: reserved}
	if reserved >= d.cfg.MaxFileBytes {
		limitErr = &LimitError{Limit: d.cfg.MaxFileBytes}
	}
	body := &capReader{r: resp.Body, left: reserved, err: limitErr}
	link, err = store.PutFile(ctx, conn, record.FileMeta{Key: ref.Key, ObjectID: objectID, Name: ref.Name,
		ContentType: resp.Header.Get("Content-Type")}, body)
	if err != nil {
		link = record.FileLink{}
		return record.FileLink{}, err
	}
	return link, nil
}

// Released gives n bytes of conn's deleted files back to its quota.
func (d *Downloader) Released(ctx context.Context, conn string, n int64) error {
	return d.cfg.Quota.Release(ctx, conn, n)
}

// capReader fails with err once more than left bytes were read.
type capReader struct {
	r    io.Reader
	left int64
	err  error
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, c.err
	}
	return n, err
}
