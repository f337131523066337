package runner

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	netTimeRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$`)
	utcNowRE   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)
	offsetTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)
)

const dailyTimer = `{"bindings":[{"name":"myTimer","type":"timerTrigger","direction":"in","schedule":"0 0 3 * * *"}]}`

// timerBody is the timer invocation as the host sends it (§3.3).
type timerBody struct {
	Data map[string]struct {
		Schedule       map[string]bool    `json:"Schedule"`
		ScheduleStatus *map[string]string `json:"ScheduleStatus"`
		IsPastDue      *bool              `json:"IsPastDue"`
	} `json:"Data"`
	Metadata struct {
		Sys map[string]string `json:"sys"`
	} `json:"Metadata"`
}

func TestTimerOnDemandSendsTheHostPayload(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Daily": dailyTimer})
	r := startRunner(t, root, s, map[string]string{"CUSTOM_SETTING": "from-settings"}, 0)

	if code := postAdmin(t, r, "Daily", `{"input":""}`); code != http.StatusAccepted {
		t.Fatalf("admin run = %d, want 202", code)
	}
	rec := s.next(t, "/Daily", 10*time.Second)
	if rec.Method != http.MethodPost {
		t.Errorf("method = %s", rec.Method)
	}
	if ct := rec.header("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !rec.Chunked {
		t.Error("body was not sent chunked like the host sends it")
	}
	if ua := rec.header("User-Agent"); ua != "Azure-Functions-Host/"+hostVersion {
		t.Errorf("User-Agent = %q", ua)
	}
	if v := rec.header("X-Azure-Functions-HostVersion"); v != hostVersion {
		t.Errorf("X-Azure-Functions-HostVersion = %q", v)
	}
	if id := rec.header("X-Azure-Functions-InvocationId"); !uuidRE.MatchString(id) {
		t.Errorf("X-Azure-Functions-InvocationId = %q", id)
	}
	// Process contract (§1.4): port variables, app root, settings, cwd.
	if p := rec.Env["FUNCTIONS_CUSTOMHANDLER_PORT"]; p == "" || p != rec.Env["FUNCTIONS_HTTPWORKER_PORT"] {
		t.Errorf("port env = %q / %q", p, rec.Env["FUNCTIONS_HTTPWORKER_PORT"])
	}
	if rec.Env["FUNCTIONS_APP_ROOT_PATH"] != root || rec.Cwd != root {
		t.Errorf("app root env = %q, cwd = %q, want %q", rec.Env["FUNCTIONS_APP_ROOT_PATH"], rec.Cwd, root)
	}
	if !uuidRE.MatchString(rec.Env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"]) {
		t.Errorf("worker id = %q", rec.Env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"])
	}
	if rec.Env["CUSTOM_SETTING"] != "from-settings" {
		t.Errorf("CUSTOM_SETTING = %q", rec.Env["CUSTOM_SETTING"])
	}

	var body timerBody
	if err := json.Unmarshal([]byte(rec.Body), &body); err != nil {
		t.Fatal(err)
	}
	tm, ok := body.Data["myTimer"]
	if !ok || len(body.Data) != 1 {
		t.Fatalf("Data = %s", rec.Body)
	}
	if !tm.Schedule["AdjustForDST"] || tm.IsPastDue == nil || *tm.IsPastDue {
		t.Errorf("timer = %s", rec.Body)
	}
	if tm.ScheduleStatus == nil {
		t.Fatalf("ScheduleStatus is null for a daily schedule with the monitor on: %s", rec.Body)
	}
	st := *tm.ScheduleStatus
	if st["Last"] != "0001-01-01T00:00:00.0000000+00:00" {
		t.Errorf("first run Last = %q, want the minimum date", st["Last"])
	}
	for _, k := range []string{"Last", "Next", "LastUpdated"} {
		if !netTimeRE.MatchString(st[k]) {
			t.Errorf("ScheduleStatus.%s = %q", k, st[k])
		}
	}
	sys := body.Metadata.Sys
	if sys["MethodName"] != "Daily" || !utcNowRE.MatchString(sys["UtcNow"]) || !uuidRE.MatchString(sys["RandGuid"]) {
		t.Errorf("sys = %v", sys)
	}

	// A second run reports the first as Last.
	postAdmin(t, r, "Daily", "")
	rec2 := s.next(t, "/Daily", 10*time.Second)
	var body2 timerBody
	if err := json.Unmarshal([]byte(rec2.Body), &body2); err != nil {
		t.Fatal(err)
	}
	if got := (*body2.Data["myTimer"].ScheduleStatus)["Last"]; got != st["Next"] {
		t.Errorf("second run Last = %q, want the first run's Next %q", got, st["Next"])
	}

	if code := postAdmin(t, r, "Nope", ""); code != http.StatusNotFound {
		t.Errorf("admin run of an unknown function = %d, want 404", code)
	}
	resp, err := http.Get("http://" + r.Addr() + "/admin/functions/Daily")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET admin = %d, want 405", resp.StatusCode)
	}
}

func TestTimerFiresOnItsResolvedSchedule(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{
		"Tick": `{"bindings":[{"name":"tick","type":"timerTrigger","direction":"in","schedule":"%TICK_SCHEDULE%"}]}`,
	})
	startRunner(t, root, s, map[string]string{"TICK_SCHEDULE": "*/1 * * * * *"}, 0)
	for i := 0; i < 2; i++ {
		rec := s.next(t, "/Tick", 5*time.Second)
		var body timerBody
		if err := json.Unmarshal([]byte(rec.Body), &body); err != nil {
			t.Fatal(err)
		}
		// The host turns the monitor off for sub-minute schedules.
		if body.Data["tick"].ScheduleStatus != nil {
			t.Errorf("ScheduleStatus = %v, want null for a every-second schedule", *body.Data["tick"].ScheduleStatus)
		}
	}
}

func TestNewRejectsUnresolvedOrInvalidSchedules(t *testing.T) {
	for name, schedule := range map[string]string{
		"unset setting": "%NO_SUCH_SETTING_X1%",
		"bad cron":      "0 0 25 * * *",
		"bad span":      "00:00:99",
	} {
		t.Run(name, func(t *testing.T) {
			root := newApp(t, testHost, map[string]string{
				"T": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"` + schedule + `"}]}`,
			})
			if _, err := New(Options{Root: root}); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2025, 3, 28, 15, 40, 7, 0, time.UTC)
	cases := map[string]time.Time{
		"0 */15 * * * *": time.Date(2025, 3, 28, 15, 45, 0, 0, time.UTC),
		"0 0 2 * * *":    time.Date(2025, 3, 29, 2, 0, 0, 0, time.UTC),
		"30 * * * * *":   time.Date(2025, 3, 28, 15, 40, 30, 0, time.UTC),
		"*/15 * * * *":   time.Date(2025, 3, 28, 15, 45, 0, 0, time.UTC), // five fields: second 0
		"0 0 9 * * Mon":  time.Date(2025, 3, 31, 9, 0, 0, 0, time.UTC),
		"00:05:00":       from.Add(5 * time.Minute),
	}
	for spec, want := range cases {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(want) {
			t.Errorf("ParseSchedule(%q).Next = %v, want %v", spec, got, want)
		}
	}
	for _, bad := range []string{"", "* * *", "0 0 0 32 * *", "not a schedule", strings.Repeat("* ", 7)} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded", bad)
		}
	}
}
