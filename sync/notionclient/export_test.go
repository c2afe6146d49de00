package notionclient

import "github.com/redis/go-redis/v9"

// RedisForExamples gives the external example package a client of the
// package's test redis-server.
func RedisForExamples() *redis.Client { return redisSrv.Client() }
