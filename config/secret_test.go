package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// printings returns v rendered every way a secret could leak: fmt verbs and
// flags, encoding/json, and both log/slog handlers.
func printings(t *testing.T, v any) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%20v", "%-20s", "%d"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	out["Sprint"] = fmt.Sprint(v)
	out["Sprintln"] = fmt.Sprintln(v)
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%T): %v", v, err)
	}
	out["json"] = string(j)
	var jb, tb bytes.Buffer
	slog.New(slog.NewJSONHandler(&jb, nil)).Info("config", "value", v)
	slog.New(slog.NewTextHandler(&tb, nil)).Info("config", "value", v)
	out["slog json"] = jb.String()
	out["slog text"] = tb.String()
	return out
}

// forms returns ways a secret's value may appear in output.
func forms(secret string) []string {
	return []string{secret, hex.EncodeToString([]byte(secret)), strings.ToUpper(hex.EncodeToString([]byte(secret)))}
}

func keyForms(key []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		fmt.Sprint([]int(bytesToInts(key))), // how %v prints a []byte
		string(key[4:20]),
	}
}

func bytesToInts(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func assertNoLeak(t *testing.T, what string, rendered map[string]string, forbidden []string) {
	t.Helper()
	for how, text := range rendered {
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%s printed with %s contains secret %q:\n%s", what, how, f, text)
			}
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	key1, k1 := testKey(101)
	key2, k2 := testKey(57)
	secrets := []string{
		"client-secret-VALUE-1234",
		"admin-token-VALUE-5678",
		"HOOKPATHSECRET-VALUE",
		"webhook-secret-VALUE-9012",
		"notion-webhook-VALUE-3456",
		"sentinel-pw-VALUE",
		"redis-pw-VALUE",
		"pg-pw-VALUE",
		"pg-sslpw-VALUE",
	}
	env := schedulerEnv(map[string]string{
		"NOTIONSYNC_TOKEN_KEYS":              "primary:" + k1 + ",old:" + k2,
		"NOTIONSYNC_NOTION_CLIENT_SECRET":    secrets[0],
		"NOTIONSYNC_ADMIN_TOKEN":             secrets[1],
		"NOTIONSYNC_WEBHOOK_URL":             "https://hooks.example.com/services/T0/B0/" + secrets[2],
		"NOTIONSYNC_WEBHOOK_SECRET":          secrets[3],
		"NOTIONSYNC_NOTION_WEBHOOK_TOKEN":    secrets[4],
		"NOTIONSYNC_REDIS_SENTINEL_ADDRS":    "s1:26379",
		"NOTIONSYNC_REDIS_SENTINEL_MASTER":   "mymaster",
		"NOTIONSYNC_REDIS_SENTINEL_PASSWORD": secrets[5],
		"NOTIONSYNC_REDIS_URL":               "rediss://user:" + secrets[6] + "@redis:6380/1",
		"NOTIONSYNC_SINK_URL":                "postgres://u:" + secrets[7] + "@db/x?sslpassword=" + secrets[8] + "&sslmode=require",
	})
	cfg, err := LoadSchedulerFrom(MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	var forbidden []string
	for _, s := range secrets {
		forbidden = append(forbidden, forms(s)...)
	}
	forbidden = append(forbidden, keyForms(key1)...)
	forbidden = append(forbidden, keyForms(key2)...)

	values := map[string]any{
		"*Scheduler":      cfg,
		"Scheduler":       *cfg,
		"Redis":           cfg.Redis,
		"Tokens":          cfg.Tokens,
		"Notion":          cfg.Notion,
		"Control":         cfg.Control,
		"KeyRing":         cfg.Keys,
		"Keys()":          cfg.Keys.Keys(),
		"Primary()":       cfg.Keys.Primary(),
		"*Key":            ptr(cfg.Keys.Primary()),
		"ClientSecret":    cfg.ClientSecret,
		"URL":             cfg.Redis.URL,
		"SinkURL":         cfg.SinkURL,
		"map of secrets":  map[string]Secret{"a": cfg.AdminToken},
		"slice of Secret": []Secret{cfg.WebhookSecret},
	}
	for what, v := range values {
		assertNoLeak(t, what, printings(t, v), forbidden)
	}

	// The printed configuration is still useful: it shows that secrets are
	// set, key ids, and the URLs with credentials masked.
	dump := fmt.Sprintf("%+v", cfg)
	for _, want := range []string{
		"ClientSecret:[redacted]",
		"Keys:primary:[redacted],old:[redacted]",
		"rediss://user:xxxxx@redis:6380/1",
		"postgres://u:xxxxx@db/x?sslmode=require&sslpassword=xxxxx",
		"ClientID:client-id",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("%%+v of the configuration lacks %q:\n%s", want, dump)
		}
	}
	// The real values are still there for the code that needs them.
	if cfg.ClientSecret.Value() != secrets[0] || cfg.AdminToken.Value() != secrets[1] ||
		cfg.SentinelPassword.Value() != secrets[5] || !strings.Contains(cfg.Redis.URL.Value(), secrets[6]) {
		t.Error("Value() does not return the secret")
	}
	if p := cfg.Keys.Primary(); !bytes.Equal(p.Secret, key1) {
		t.Error("primary key material lost")
	}
}

func ptr[T any](v T) *T { return &v }

// TestErrorsNeverContainSecrets loads configurations whose secret values are
// wrong and checks that no message repeats them.
func TestErrorsNeverContainSecrets(t *testing.T) {
	t.Parallel()
	key31 := make([]byte, 31)
	for i := range key31 {
		key31[i] = byte(200 - i)
	}
	k31 := base64.StdEncoding.EncodeToString(key31)
	cases := []struct {
		name   string
		env    map[string]string
		secret []string
	}{
		{"short admin token", map[string]string{"NOTIONSYNC_ADMIN_TOKEN": "tooShortVALUE"}, []string{"tooShortVALUE"}},
		{"short webhook secret", map[string]string{"NOTIONSYNC_WEBHOOK_URL": "https://h/x", "NOTIONSYNC_WEBHOOK_SECRET": "whVALUE"}, []string{"whVALUE"}},
		{"bad webhook url", map[string]string{"NOTIONSYNC_WEBHOOK_URL": "ftp://hooks/TOKENVALUE", "NOTIONSYNC_WEBHOOK_SECRET": "0123456789abcdef"}, []string{"TOKENVALUE"}},
		{"redis url unparsable", map[string]string{"NOTIONSYNC_REDIS_URL": "redis://u:REDISPW@h:port/0"}, []string{"REDISPW"}},
		{"redis url bad db", map[string]string{"NOTIONSYNC_REDIS_URL": "redis://u:REDISPW@h:1/x"}, []string{"REDISPW"}},
		{"redis url bad scheme", map[string]string{"NOTIONSYNC_REDIS_URL": "http://u:REDISPW@h:1/0"}, []string{"REDISPW"}},
		{"redis url password option", map[string]string{"NOTIONSYNC_REDIS_URL": "redis://h:1/0?password=REDISPW"}, []string{"REDISPW"}},
		{"sink url bad scheme", map[string]string{"NOTIONSYNC_SINK_URL": "mysql://u:PGPW@h/db"}, []string{"PGPW"}},
		{"sink url unparsable", map[string]string{"NOTIONSYNC_SINK_URL": "postgres://u:PGPW@h:port/db"}, []string{"PGPW"}},
		{"key wrong length", map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k1:" + k31}, keyForms(key31)},
		{"key without id", map[string]string{"NOTIONSYNC_TOKEN_KEYS": k31}, keyForms(key31)},
		{"key as id", map[string]string{"NOTIONSYNC_TOKEN_KEYS": k31 + ":k1"}, keyForms(key31)},
		{"key with bad base64", map[string]string{"NOTIONSYNC_TOKEN_KEYS": "k1:" + k31 + "*"}, keyForms(key31)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadSchedulerFrom(MapLookup(schedulerEnv(tc.env)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.secret {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error contains secret %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestSecretForms(t *testing.T) {
	t.Parallel()
	s := NewSecret("hunter2-hunter2")
	checks := map[string]string{
		s.String():                "[redacted]",
		fmt.Sprintf("%v", s):      "[redacted]",
		fmt.Sprintf("%q", s):      `"[redacted]"`,
		fmt.Sprintf("%#v", s):     `config.Secret("[redacted]")`,
		fmt.Sprintf("%12s|", s):   "  [redacted]|",
		mustJSON(t, s):            `"[redacted]"`,
		mustJSON(t, Secret{}):     `""`,
		fmt.Sprint(Secret{}):      "",
		NewSecret("x").GoString(): `config.Secret("[redacted]")`,
	}
	for got, want := range checks {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if s.Value() != "hunter2-hunter2" || !s.IsSet() || (Secret{}).IsSet() {
		t.Error("Value/IsSet")
	}
	text, _ := s.MarshalText()
	if string(text) != Redacted {
		t.Errorf("MarshalText = %q", text)
	}
	if v := s.LogValue(); v.String() != Redacted {
		t.Errorf("LogValue = %q", v.String())
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestURLRedaction(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"":                                      "",
		"redis://localhost:6379/0":              "redis://localhost:6379/0",
		"redis://:pw@h:1/0":                     "redis://:xxxxx@h:1/0",
		"rediss://user:pw@h:1/2?dial_timeout=3": "rediss://user:xxxxx@h:1/2?dial_timeout=3",
		"redis://user@h:1/0":                    "redis://user@h:1/0",
		"postgres://u:p@db/x?sslmode=require&password=p2&api_key=k&Token=t": "postgres://u:xxxxx@db/x?Token=xxxxx&api_key=xxxxx&password=xxxxx&sslmode=require",
		"redis://u:pw@h:port/0":   Redacted,
		"file://./data":           "file://./data",
		"https://h/x#frag-secret": "https://h/x",
		"mailto:someone:pw":       Redacted,
	} {
		if got := NewURL(raw).String(); got != want {
			t.Errorf("NewURL(%q).String() = %q, want %q", raw, got, want)
		}
	}
	u := NewURL("redis://:pw@h:1/0")
	if got := fmt.Sprintf("%#v", u); got != `config.URL("redis://:xxxxx@h:1/0")` {
		t.Errorf("%%#v = %s", got)
	}
	if got := mustJSON(t, u); got != `"redis://:xxxxx@h:1/0"` {
		t.Errorf("json = %s", got)
	}
}
