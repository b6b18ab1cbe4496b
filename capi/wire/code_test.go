package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quicksand-go/quicksand/engine"
)

func TestDecodeCodeRequest(t *testing.T) {
	raw, _ := msgpack.Marshal(map[string]any{"code": "1", "language": "bash", "context": "c1", "env": map[string]string{"A": "b"}, "timeout": 2.5})
	r, err := DecodeCodeRequest(raw)
	if err != nil || r.Code != "1" || r.Language != "bash" || r.Context != "c1" || r.Env["A"] != "b" || r.Timeout != 2500*time.Millisecond {
		t.Fatalf("%+v %v", r, err)
	}
	for in, want := range map[string]string{
		`{"language": "python"}`:      `"code" is required`,
		`{"code": 1}`:                 `"code" must be a string`,
		`{"code": "", "cwd": 1}`:      `"cwd" is not a known key`,
		`{"code": "", "timeout": -1}`: `"timeout" must be between`,
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(in), &m); err != nil {
			t.Fatal(err)
		}
		raw, _ := msgpack.Marshal(m)
		if _, err := DecodeCodeRequest(raw); err == nil || engine.KindOf(err) != engine.KindBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", in, err, want)
		}
	}
}

func TestEncodeExecution(t *testing.T) {
	ex := &engine.Execution{
		Results:        []engine.CodeResult{{Text: "42", PNG: "iVBO", IsMainResult: true, Extra: map[string]any{"image/gif": "R0lG"}}},
		Logs:           engine.CodeLogs{Stdout: []string{"a\n"}},
		Error:          &engine.CodeError{Name: "ZeroDivisionError", Value: "division by zero", Traceback: "tb"},
		ExecutionCount: 3,
	}
	var m map[string]any
	if err := msgpack.Unmarshal(EncodeExecution(ex), &m); err != nil {
		t.Fatal(err)
	}
	r := m["results"].([]any)[0].(map[string]any)
	logs := m["logs"].(map[string]any)
	if r["text"] != "42" || r["png"] != "iVBO" || r["is_main_result"] != true || r["html"] != nil ||
		r["extra"].(map[string]any)["image/gif"] != "R0lG" {
		t.Errorf("result %v", r)
	}
	if len(logs["stdout"].([]any)) != 1 || logs["stderr"] == nil || len(logs["stderr"].([]any)) != 0 {
		t.Errorf("logs %v", logs)
	}
	if m["error"].(map[string]any)["name"] != "ZeroDivisionError" || m["execution_count"] != int8(3) {
		t.Errorf("%v", m)
	}
	if err := msgpack.Unmarshal(EncodeExecution(&engine.Execution{}), &m); err != nil || m["error"] != nil {
		t.Errorf("no error: %v %v", m, err)
	}
}
