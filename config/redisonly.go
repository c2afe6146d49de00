package config

// redisOnly is the Redis part of the binaries' configuration, for tools
// that talk to Redis and nothing else (notionsyncctl redis migrate-keys):
// the same variables, defaults and checks as the worker and scheduler, so
// the tool finds the data where the services keep it.
type redisOnly struct {
	Redis `envPrefix:"REDIS_"`
}

func (r *redisOnly) validate(c *collector) { r.Redis.validate(c) }

// LoadRedisFrom reads the NOTIONSYNC_REDIS_* variables through lookup
// (os.LookupEnv or MapLookup), applies defaults and validates them like
// LoadWorkerFrom. On error it returns nil and an error joining one
// *VarError per problem.
func LoadRedisFrom(lookup func(string) (string, bool)) (*Redis, error) {
	cfg, err := load[redisOnly](lookup)
	if err != nil {
		return nil, err
	}
	return &cfg.Redis, nil
}
