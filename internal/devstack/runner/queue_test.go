package runner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

func queueFunction(queue string) string {
	return `{"bindings":[{"name":"msg","type":"queueTrigger","direction":"in","queueName":"` + queue + `","connection":"AzureWebJobsStorage"}]}`
}

func queueClient(t *testing.T, name string) *azqueue.QueueClient {
	t.Helper()
	svc, err := azqueue.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc.NewQueueClient(name)
}

func enqueueRaw(t *testing.T, queue, raw string) {
	t.Helper()
	q := queueClient(t, queue)
	if _, err := q.Create(context.Background(), nil); err != nil {
		t.Logf("create %s: %v", queue, err) // already created by the runner
	}
	if _, err := q.EnqueueMessage(context.Background(), raw, nil); err != nil {
		t.Fatal(err)
	}
}

// peekAll returns the visible messages' raw text.
func peekAll(t *testing.T, queue string) []string {
	t.Helper()
	resp, err := queueClient(t, queue).PeekMessages(context.Background(), &azqueue.PeekMessagesOptions{NumberOfMessages: new(int32(32))})
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range resp.Messages {
		out = append(out, *m.MessageText)
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// queueBody is the queue invocation with every value kept raw, so the test
// sees the exact encoding.
type queueBody struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

func decodeQueueBody(t *testing.T, rec record) queueBody {
	t.Helper()
	var b queueBody
	if err := json.Unmarshal([]byte(rec.Body), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return b
}

// metaString unwraps one JSON string level of a Metadata value.
func metaString(t *testing.T, b queueBody, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(b.Metadata[key], &s); err != nil {
		t.Fatalf("Metadata.%s = %s: %v", key, b.Metadata[key], err)
	}
	return s
}

func TestQueuePayloadMatchesTheCapturedHostEncoding(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Work": queueFunction("%WORK_QUEUE%")})
	startRunner(t, root, s, map[string]string{"WORK_QUEUE": "work-encoding"}, 0)

	// The capture's message (research §3.4).
	enqueueRaw(t, "work-encoding", base64.StdEncoding.EncodeToString([]byte("hello!!")))
	rec := s.next(t, "/Work", 10*time.Second)
	b := decodeQueueBody(t, rec)
	if got := string(b.Data["msg"]); got != `"\"hello!!\""` {
		t.Errorf("Data.msg = %s, want the double-encoded %s", got, `"\"hello!!\""`)
	}
	if got := string(b.Metadata["DequeueCount"]); got != `"1"` {
		t.Errorf("DequeueCount = %s, want the string \"1\"", got)
	}
	id := metaString(t, b, "Id")
	if len(id) < 3 || id[0] != '"' || id[len(id)-1] != '"' {
		t.Errorf("Id = %q, want a quoted id", id)
	}
	if pr := metaString(t, b, "PopReceipt"); len(pr) < 3 || pr[0] != '"' {
		t.Errorf("PopReceipt = %q, want a quoted receipt", pr)
	}
	for _, k := range []string{"ExpirationTime", "InsertionTime", "NextVisibleTime"} {
		if v := metaString(t, b, k); !offsetTime.MatchString(v) {
			t.Errorf("%s = %q, want ISO time with +00:00 and no fraction", k, v)
		}
	}
	var sys map[string]string
	if err := json.Unmarshal(b.Metadata["sys"], &sys); err != nil || sys["MethodName"] != "Work" || !utcNowRE.MatchString(sys["UtcNow"]) {
		t.Errorf("sys = %s", b.Metadata["sys"])
	}
	eventually(t, "the processed message to be deleted", 5*time.Second, func() bool { return len(peekAll(t, "work-encoding")) == 0 })

	// A JSON message: the text round-trips through two decodes, HTML
	// characters unescaped (Newtonsoft doesn't escape them), and top-level
	// properties become binding data.
	text := `{"tenant":"acme","note":"<a&b>","n":4,"list":[1],"obj":{"k":"v"},"QueueTrigger":"x"}`
	enqueueRaw(t, "work-encoding", base64.StdEncoding.EncodeToString([]byte(text)))
	b = decodeQueueBody(t, s.next(t, "/Work", 10*time.Second))
	var once, twice string
	if err := json.Unmarshal(b.Data["msg"], &once); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(once), &twice); err != nil {
		t.Fatal(err)
	}
	if twice != text {
		t.Errorf("message text after two decodes = %q, want %q", twice, text)
	}
	if want := `"\"{\\\"tenant\\\":\\\"acme\\\",\\\"note\\\":\\\"<a&b>\\\"`; string(b.Data["msg"][:len(want)]) != want {
		t.Errorf("Data.msg = %s, want prefix %s", b.Data["msg"], want)
	}
	if got := string(b.Metadata["tenant"]); got != `"\"acme\""` {
		t.Errorf("Metadata.tenant = %s", got)
	}
	if got := string(b.Metadata["n"]); got != `"4"` {
		t.Errorf("Metadata.n = %s", got)
	}
	if got := string(b.Metadata["obj"]); got != `{"k":"v"}` {
		t.Errorf("Metadata.obj = %s", got)
	}
	for _, k := range []string{"list", "QueueTrigger"} {
		if _, ok := b.Metadata[k]; ok {
			t.Errorf("Metadata.%s present; arrays and *Trigger names are skipped", k)
		}
	}
}

func TestQueueRetriesAFailedMessageThenSucceeds(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Work": queueFunction("work-retry")})
	startRunner(t, root, s, map[string]string{"FAKE_FAIL_Work": "1"}, 0)
	enqueueRaw(t, "work-retry", base64.StdEncoding.EncodeToString([]byte("job-1")))
	for want := 1; want <= 2; want++ {
		b := decodeQueueBody(t, s.next(t, "/Work", 10*time.Second))
		if got := metaString(t, b, "DequeueCount"); got != strconv.Itoa(want) {
			t.Fatalf("attempt %d has DequeueCount %q", want, got)
		}
	}
	eventually(t, "the message to be deleted after success", 5*time.Second, func() bool { return len(peekAll(t, "work-retry")) == 0 })
	s.none(t, "/Work", time.Second)
	if p := peekAll(t, "work-retry-poison"); len(p) != 0 {
		t.Errorf("poison queue = %v, want empty", p)
	}
}

func TestQueueMovesAMessageToPoisonAfterMaxDequeueCount(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Doomed": queueFunction("doomed")})
	startRunner(t, root, s, map[string]string{"FAKE_FAIL_Doomed": "100"}, 0)
	raw := base64.StdEncoding.EncodeToString([]byte(`{"tenant":"acme"}`))
	enqueueRaw(t, "doomed", raw)
	for want := 1; want <= 3; want++ { // testHost sets maxDequeueCount 3
		b := decodeQueueBody(t, s.next(t, "/Doomed", 10*time.Second))
		if got := metaString(t, b, "DequeueCount"); got != strconv.Itoa(want) {
			t.Fatalf("attempt %d has DequeueCount %q", want, got)
		}
	}
	eventually(t, "the message in doomed-poison", 5*time.Second, func() bool { return len(peekAll(t, "doomed-poison")) == 1 })
	if p := peekAll(t, "doomed-poison"); p[0] != raw {
		t.Errorf("poison message = %q, want the original %q", p[0], raw)
	}
	if q := peekAll(t, "doomed"); len(q) != 0 {
		t.Errorf("queue still holds %v", q)
	}
	s.none(t, "/Doomed", time.Second)
}

func TestQueueSendsInvalidBase64StraightToPoison(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Raw": queueFunction("raw-items")})
	startRunner(t, root, s, nil, 0)
	enqueueRaw(t, "raw-items", "this is not base64!")
	eventually(t, "the message in raw-items-poison", 10*time.Second, func() bool { return len(peekAll(t, "raw-items-poison")) == 1 })
	if p := peekAll(t, "raw-items-poison"); p[0] != "this is not base64!" {
		t.Errorf("poison message = %q", p[0])
	}
	s.none(t, "/Raw", 500*time.Millisecond)
}

func TestQueueEncodingNonePassesTextThrough(t *testing.T) {
	s := newSink(t)
	host := `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}},
	  "extensions":{"queues":{"messageEncoding":"none","maxPollingInterval":"00:00:00.300"}}}`
	root := newApp(t, host, map[string]string{"Plain": queueFunction("plain-items")})
	startRunner(t, root, s, nil, 0)
	enqueueRaw(t, "plain-items", "not base64 but fine")
	b := decodeQueueBody(t, s.next(t, "/Plain", 10*time.Second))
	if got := string(b.Data["msg"]); got != `"\"not base64 but fine\""` {
		t.Errorf("Data.msg = %s", got)
	}
}

func TestQueueOutputBindingEnqueuesEncodedMessages(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{
		"Emit": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 0 3 * * *"},
		  {"name":"out","type":"queue","direction":"out","queueName":"emitted"}]}`,
	})
	r := startRunner(t, root, s, map[string]string{"FAKE_OUTPUTS_Emit": `{"out":["m1","{\"a\":1}"],"undeclared":["x"]}`}, 0)
	postAdmin(t, r, "Emit", "")
	s.next(t, "/Emit", 10*time.Second)
	var got []string
	eventually(t, "two messages in emitted", 5*time.Second, func() bool { got = peekAll(t, "emitted"); return len(got) == 2 })
	for i, want := range []string{"m1", `{"a":1}`} {
		dec, err := base64.StdEncoding.DecodeString(got[i])
		if err != nil || string(dec) != want {
			t.Errorf("message %d = %q (%v), want base64 of %q", i, got[i], err, want)
		}
	}
}

func TestAdminRunOfAQueueFunctionUsesTheInputAsMessage(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Work": queueFunction("work-admin")})
	r := startRunner(t, root, s, nil, 0)
	if code := postAdmin(t, r, "Work", `{"input":"{\"tenant\":\"acme\"}"}`); code != 202 {
		t.Fatalf("admin = %d", code)
	}
	b := decodeQueueBody(t, s.next(t, "/Work", 10*time.Second))
	if got := string(b.Data["msg"]); got != `"\"{\\\"tenant\\\":\\\"acme\\\"}\""` {
		t.Errorf("Data.msg = %s", got)
	}
}

// A message enqueued with an initial visibility delay (how a backup waiting
// out a transient key failure is retried, jobqueue.EnqueueAfter) is
// delivered only once visible, as a first delivery: the runner, like the
// host, dequeues only visible messages. The delayed message is enqueued
// first, so a runner that ignored the delay would deliver it first.
func TestQueueHonoursAMessagesVisibilityDelay(t *testing.T) {
	s := newSink(t)
	root := newApp(t, testHost, map[string]string{"Work": queueFunction("work-delayed")})
	startRunner(t, root, s, nil, 0)
	q := queueClient(t, "work-delayed")
	if _, err := q.Create(context.Background(), nil); err != nil {
		t.Logf("create: %v", err)
	}
	start := time.Now()
	delay := int32(3)
	if _, err := q.EnqueueMessage(context.Background(), base64.StdEncoding.EncodeToString([]byte("later")),
		&azqueue.EnqueueMessageOptions{VisibilityTimeout: &delay}); err != nil {
		t.Fatal(err)
	}
	enqueueRaw(t, "work-delayed", base64.StdEncoding.EncodeToString([]byte("now")))
	for _, want := range []string{"now", "later"} {
		b := decodeQueueBody(t, s.next(t, "/Work", 20*time.Second))
		var text string
		if err := json.Unmarshal(b.Data["msg"], &text); err != nil {
			t.Fatal(err)
		}
		if text != strconv.Quote(want) {
			t.Fatalf("delivered %s, want %q", text, want)
		}
		if got := metaString(t, b, "DequeueCount"); got != "1" {
			t.Errorf("%s: DequeueCount %q, want 1", want, got)
		}
	}
	// A lower bound only: Azurite counts whole seconds.
	if d := time.Since(start); d < time.Duration(delay-1)*time.Second {
		t.Errorf("the delayed message was delivered after %s, before its %ds delay", d, delay)
	}
}
