package input

import (
	"reflect"
	"strings"
	"testing"
)

func codes(evs []Event) []string {
	var out []string
	for _, e := range evs {
		d := e["data"].(map[string]any)
		k := d["key"].(map[string]any)
		dir := "+"
		if !d["down"].(bool) {
			dir = "-"
		}
		out = append(out, dir+k["data"].(string))
	}
	return out
}

func TestTypeUsesShiftWhereTheUSLayoutDoes(t *testing.T) {
	got, err := Type("aB!\n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"+a", "-a"}, {"+shift", "+b", "-b", "-shift"}, {"+shift", "+1", "-1", "-shift"}, {"+ret", "-ret"}}
	for i := range want {
		if c := codes(got[i]); !reflect.DeepEqual(c, want[i]) {
			t.Errorf("character %d: %v, want %v", i, c, want[i])
		}
	}
	// Every printable ASCII character has a key.
	for r := rune(32); r < 127; r++ {
		if _, err := Type(string(r)); err != nil {
			t.Errorf("%q: %v", r, err)
		}
	}
}

func TestTypeNamesWhatItCannotType(t *testing.T) {
	_, err := Type("ok é")
	if err == nil || !strings.Contains(err.Error(), `'é'`) || !strings.Contains(err.Error(), "character 4") {
		t.Fatalf("%v", err)
	}
}

func TestPressCombinations(t *testing.T) {
	evs, err := Press([]string{"ctrl", "Alt", "F4"})
	if err != nil {
		t.Fatal(err)
	}
	if c := codes(evs); !reflect.DeepEqual(c, []string{"+ctrl", "+alt", "+f4", "-f4", "-alt", "-ctrl"}) {
		t.Errorf("%v", c)
	}
	evs, _ = Press([]string{"Return"})
	if c := codes(evs); !reflect.DeepEqual(c, []string{"+ret", "-ret"}) {
		t.Errorf("Return: %v", c)
	}
	if _, err := Press([]string{"ctrl", "Hyper_Q"}); err == nil || !strings.Contains(err.Error(), "Hyper_Q") {
		t.Errorf("an unknown key: %v", err)
	}
	if _, err := Press(nil); err == nil {
		t.Error("no keys: no error")
	}
}

func TestToAbsSpansTheAxis(t *testing.T) {
	if ToAbs(0, 1280) != 0 || ToAbs(1279, 1280) != AbsMax {
		t.Errorf("ends: %d %d", ToAbs(0, 1280), ToAbs(1279, 1280))
	}
	if v := ToAbs(640, 1280); v < 16390 || v > 16410 {
		t.Errorf("middle: %d", v)
	}
}
