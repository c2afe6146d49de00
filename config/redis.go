package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

const (
	varRedisURL              = Prefix + "REDIS_URL"
	varRedisSentinelAddrs    = Prefix + "REDIS_SENTINEL_ADDRS"
	varRedisSentinelMaster   = Prefix + "REDIS_SENTINEL_MASTER"
	varRedisSentinelPassword = Prefix + "REDIS_SENTINEL_PASSWORD"
	varRedisClusterAddrs     = Prefix + "REDIS_CLUSTER_ADDRS"
	varRedisKeyPrefix        = Prefix + "REDIS_KEY_PREFIX"
)

// UniversalOptions returns go-redis options for redis.NewUniversalClient, so
// one client type covers the three deployments:
//
//   - single node: Addrs holds the URL's host:port; DB, username, password,
//     TLS (rediss://) and the URL's query options come from the URL.
//   - Sentinel (SentinelAddrs set): Addrs holds the Sentinels, MasterName the
//     master, SentinelPassword the Sentinels' password; DB, credentials, TLS
//     and options still come from the URL and apply to the master (go-redis
//     uses the TLS setting for the Sentinels too).
//   - Redis Cluster (ClusterAddrs set): Addrs holds the seeds and
//     IsClusterMode is set, so NewUniversalClient returns a
//     *redis.ClusterClient even for one seed (a cluster's configuration
//     endpoint); credentials, TLS and options come from the URL and apply to
//     every node; DB is 0, the only database a cluster has.
//
// With TLS behind Sentinel or in a cluster, ServerName is left empty, so
// each connection verifies the certificate against the host it dials (a
// Sentinel, the master it announced, or a cluster node).
//
// Each call returns new options (and a new tls.Config) that the caller may
// modify, e.g. to add RootCAs. The error is a *VarError naming the variable.
func (r Redis) UniversalOptions() (*redis.UniversalOptions, error) {
	node, verr := r.nodeOptions()
	if verr != nil {
		return nil, verr
	}
	sentinels, verr := r.sentinels()
	if verr != nil {
		return nil, verr
	}
	seeds, verr := r.clusterSeeds()
	if verr != nil {
		return nil, verr
	}
	if verr := r.checkModes(sentinels, seeds, node); verr != nil {
		return nil, verr
	}
	uo := &redis.UniversalOptions{
		Addrs:                   []string{node.Addr},
		ClientName:              node.ClientName,
		DB:                      node.DB,
		Protocol:                node.Protocol,
		Username:                node.Username,
		Password:                node.Password,
		MaxRetries:              node.MaxRetries,
		MinRetryBackoff:         node.MinRetryBackoff,
		MaxRetryBackoff:         node.MaxRetryBackoff,
		DialTimeout:             node.DialTimeout,
		ReadTimeout:             node.ReadTimeout,
		WriteTimeout:            node.WriteTimeout,
		PoolFIFO:                node.PoolFIFO,
		PoolSize:                node.PoolSize,
		PoolTimeout:             node.PoolTimeout,
		MinIdleConns:            node.MinIdleConns,
		MaxIdleConns:            node.MaxIdleConns,
		MaxActiveConns:          node.MaxActiveConns,
		MaxConcurrentDials:      node.MaxConcurrentDials,
		PipelinePoolSize:        node.PipelinePoolSize,
		PipelineReadBufferSize:  node.PipelineReadBufferSize,
		PipelineWriteBufferSize: node.PipelineWriteBufferSize,
		ConnMaxIdleTime:         node.ConnMaxIdleTime,
		ConnMaxLifetime:         node.ConnMaxLifetime,
		ConnMaxLifetimeJitter:   node.ConnMaxLifetimeJitter,
		TLSConfig:               node.TLSConfig,
	}
	switch {
	case len(sentinels) > 0:
		uo.Addrs = sentinels
		uo.MasterName = r.SentinelMaster
		uo.SentinelPassword = r.SentinelPassword.Value()
	case len(seeds) > 0:
		uo.Addrs = seeds
		uo.IsClusterMode = true
	default:
		return uo, nil
	}
	if uo.TLSConfig != nil {
		uo.TLSConfig.ServerName = ""
	}
	return uo, nil
}

// IsCluster reports whether this configuration points at a Redis Cluster.
func (r Redis) IsCluster() bool { return len(r.ClusterAddrs) > 0 }

// Where names, for an error message, the Redis this configuration points
// at and the variable that chose it: "NOTIONSYNC_REDIS_URL (host:port)", the
// cluster seeds, or the Sentinels and master with their variables. It never
// shows credentials, so an operator whose Redis cannot be reached learns
// what to fix without a secret reaching a log.
func (r Redis) Where() string {
	if seeds, verr := r.clusterSeeds(); verr == nil && len(seeds) > 0 {
		return fmt.Sprintf("Redis Cluster %s (%s)", varRedisClusterAddrs, strings.Join(seeds, ","))
	}
	if sentinels, verr := r.sentinels(); verr == nil && len(sentinels) > 0 {
		return fmt.Sprintf("%s (%s), master %q (%s)", varRedisSentinelAddrs, strings.Join(sentinels, ","),
			r.SentinelMaster, varRedisSentinelMaster)
	}
	node, verr := r.nodeOptions()
	if verr != nil {
		return varRedisURL
	}
	return fmt.Sprintf("%s (%s)", varRedisURL, node.Addr)
}

// nodeOptions parses URL.
func (r Redis) nodeOptions() (*redis.Options, *VarError) {
	raw := r.URL.Value()
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Scheme == "" {
		// url.Parse's error quotes the whole URL, password included: say
		// nothing of it.
		return nil, &VarError{Var: varRedisURL, Msg: "not a valid URL (want redis://[user:password@]host:port/db, or rediss:// for TLS)"}
	}
	shown := r.URL.String()
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, &VarError{Var: varRedisURL, Value: shown, Msg: fmt.Sprintf("scheme %q is not supported (want redis, or rediss for TLS)", u.Scheme)}
	}
	if u.Query().Has("addr") {
		// go-redis's ParseClusterURL form. One convention per setting: the
		// seeds go in their own variable, as the Sentinels do.
		return nil, &VarError{Var: varRedisURL, Value: shown, Msg: "addr= is go-redis's cluster URL form: list the cluster's nodes in " + varRedisClusterAddrs + " instead"}
	}
	// go-redis's messages name the offending path or query part, never the
	// userinfo.
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, &VarError{Var: varRedisURL, Value: shown, Msg: strings.TrimPrefix(err.Error(), "redis: ")}
	}
	return o, nil
}

// sentinels returns the trimmed Sentinel addresses.
func (r Redis) sentinels() ([]string, *VarError) {
	return hostPorts(varRedisSentinelAddrs, r.SentinelAddrs)
}

// clusterSeeds returns the trimmed cluster seed addresses.
func (r Redis) clusterSeeds() ([]string, *VarError) {
	return hostPorts(varRedisClusterAddrs, r.ClusterAddrs)
}

// hostPorts trims and checks a list of host:port addresses read from name.
func hostPorts(name string, addrs []string) ([]string, *VarError) {
	if len(addrs) == 0 {
		return nil, nil
	}
	shown := strconv.Quote(strings.Join(addrs, ","))
	out := make([]string, 0, len(addrs))
	for i, addr := range addrs {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			return nil, &VarError{Var: name, Value: shown, Msg: fmt.Sprintf("entry %d is empty", i+1)}
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, &VarError{Var: name, Value: shown, Msg: fmt.Sprintf("entry %d %q: want host:port", i+1, addr)}
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, &VarError{Var: name, Value: shown, Msg: fmt.Sprintf("entry %d %q: port must be a number from 1 to 65535", i+1, addr)}
		}
		out = append(out, addr)
	}
	return out, nil
}

// checkModes checks that at most one of Sentinel and cluster is chosen,
// that the Sentinel variables come together, and that a cluster is asked
// for database 0 (a cluster has no other; go-redis would silently use 0).
func (r Redis) checkModes(sentinels, seeds []string, node *redis.Options) *VarError {
	if len(seeds) > 0 {
		switch {
		case len(sentinels) > 0 || r.SentinelMaster != "":
			return &VarError{Var: varRedisClusterAddrs, Msg: "set together with " + varRedisSentinelAddrs + " or " + varRedisSentinelMaster + ": choose Redis Cluster or Sentinel, not both (a cluster fails over by itself)"}
		case r.SentinelPassword.IsSet():
			return &VarError{Var: varRedisSentinelPassword, Msg: "set, but " + varRedisClusterAddrs + " chooses Redis Cluster, which has no Sentinels (the nodes' password goes in " + varRedisURL + ")"}
		case node != nil && node.DB != 0:
			return &VarError{Var: varRedisURL, Value: r.URL.String(), Msg: fmt.Sprintf("database %d with %s: a Redis Cluster has database 0 only (use /0, or no path)", node.DB, varRedisClusterAddrs)}
		}
		return nil
	}
	return r.checkSentinelPairing(sentinels)
}

// checkSentinelPairing checks that the Sentinel variables come together.
func (r Redis) checkSentinelPairing(sentinels []string) *VarError {
	switch {
	case len(sentinels) > 0 && r.SentinelMaster == "":
		return &VarError{Var: varRedisSentinelMaster, Msg: "required with " + varRedisSentinelAddrs + " (the name the Sentinels monitor the master under)"}
	case len(sentinels) == 0 && r.SentinelMaster != "":
		return &VarError{Var: varRedisSentinelMaster, Value: strconv.Quote(r.SentinelMaster), Msg: "set, but " + varRedisSentinelAddrs + " is not: set both for Sentinel, neither for a single node"}
	case len(sentinels) == 0 && r.SentinelPassword.IsSet():
		return &VarError{Var: varRedisSentinelPassword, Msg: "set, but " + varRedisSentinelAddrs + " is not (the master's password goes in " + varRedisURL + ")"}
	}
	return nil
}

func (r *Redis) validate(c *collector) {
	node, nverr := r.nodeOptions()
	c.addErr(nverr)
	sentinels, sverr := r.sentinels()
	c.addErr(sverr)
	seeds, cverr := r.clusterSeeds()
	c.addErr(cverr)
	if sverr == nil && cverr == nil {
		c.addErr(r.checkModes(sentinels, seeds, node))
	}
	if strings.ContainsFunc(r.KeyPrefix, isSpaceOrControl) {
		c.add(varRedisKeyPrefix, strconv.Quote(r.KeyPrefix), "must not contain spaces or control characters")
	}
}
