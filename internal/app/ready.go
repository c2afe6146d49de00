package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/notionsync/notionsync/tokens"
)

// Keyring readiness: a worker whose NOTIONSYNC_TOKEN_KEYS open no stored
// record would otherwise report ready and fail every task it takes.
const (
	// keyCheckEvery is how long a keyring check result is reused: probes
	// come every few seconds, and the answer changes only with the
	// configuration (a restart) or with records written by other processes.
	keyCheckEvery = 30 * time.Second
	// keyCheckSample is how many of the oldest and of the newest
	// connections each check opens.
	keyCheckSample = 4
)

// keyringCheck reports whether the process's keyring opens a sample of the
// stored records, caching the answer for keyCheckEvery. It logs when the
// answer changes, not on every probe.
type keyringCheck struct {
	store *tokens.Store
	log   *zap.Logger
	now   func() time.Time

	mu      sync.Mutex
	checked bool
	at      time.Time
	err     *tokens.KeyError
}

// check returns nil, a *tokens.KeyError (cached), or a Redis error (not
// cached: Redis may be back at the next probe).
func (k *keyringCheck) check(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.checked && now.Sub(k.at) < keyCheckEvery {
		if k.err != nil {
			return k.err
		}
		return nil
	}
	err := k.store.CheckKeys(ctx, keyCheckSample)
	var ke *tokens.KeyError
	if err != nil && !errors.As(err, &ke) {
		return err
	}
	switch {
	case ke != nil && (k.err == nil || *k.err != *ke):
		k.log.Warn("not ready: the configured token keys cannot open a stored token; fix NOTIONSYNC_TOKEN_KEYS",
			zap.String("key_id", ke.KeyID), zap.Bool("key_id_configured", !ke.Missing), zap.String("conn_id", ke.ConnID))
	case ke == nil && k.err != nil:
		k.log.Info("ready: the configured token keys open the stored tokens again")
	}
	k.checked, k.at, k.err = true, now, ke
	if ke != nil {
		return ke
	}
	return nil
}

// keyringNotReady is the /readyz body for a keyring that opens no record:
// the key id, never key material; no connection id (the body is
// unauthenticated; the log has it).
func keyringNotReady(ke *tokens.KeyError) string {
	if ke.Missing {
		return "token keys: stored tokens are sealed with key id \"" + ke.KeyID + "\", which NOTIONSYNC_TOKEN_KEYS does not configure"
	}
	return "token keys: key id \"" + ke.KeyID + "\" in NOTIONSYNC_TOKEN_KEYS does not open the stored tokens (other key material under that id?)"
}
