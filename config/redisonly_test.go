package config

import (
	"errors"
	"testing"
)

func TestLoadRedisFrom(t *testing.T) {
	r, err := LoadRedisFrom(MapLookup(map[string]string{"NOTIONSYNC_REDIS_URL": "redis://h:7000/2"}))
	if err != nil {
		t.Fatal(err)
	}
	if r.KeyPrefix != "notionsync:" || r.URL.Value() != "redis://h:7000/2" {
		t.Errorf("got prefix %q, URL %v", r.KeyPrefix, r.URL)
	}
	_, err = LoadRedisFrom(MapLookup(map[string]string{"NOTIONSYNC_REDIS_SENTINEL_ADDRS": "s1:26379"}))
	var ve *VarError
	if !errors.As(err, &ve) || ve.Var != "NOTIONSYNC_REDIS_SENTINEL_MASTER" && ve.Var != "NOTIONSYNC_REDIS_SENTINEL_ADDRS" {
		t.Errorf("Sentinel without master: err = %v", err)
	}
}
