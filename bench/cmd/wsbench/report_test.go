package main

import (
	"slices"
	"testing"
)

func TestRotate(t *testing.T) {
	s := []string{"a", "b", "c"}
	if got := rotate(s, 1); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("rotate 1: %v", got)
	}
	if got := rotate(s, 4); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("rotate 4: %v", got)
	}
	if !slices.Equal(s, []string{"a", "b", "c"}) {
		t.Fatal("rotate changed its input")
	}
}

func TestMakePlan(t *testing.T) {
	p, err := makePlan(config{rounds: 3, smoke: true, micro: true, profile: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.write || p.micro || p.profile || len(p.rows) != 3 {
		t.Fatalf("smoke plan %+v", p)
	}
	for _, r := range p.rows {
		if r.Conns > 20 {
			t.Fatalf("smoke row %s has %d connections", r.ID, r.Conns)
		}
	}
	if _, err := makePlan(config{rounds: 1, only: "nosuchserver"}); err == nil {
		t.Fatal("an unknown server was accepted")
	}
	p, err = makePlan(config{rounds: 1, only: "floor,ours", rows: "1x32"})
	if err != nil || !slices.Equal(p.servers, []string{"floor", "ours"}) || len(p.rows) != 1 {
		t.Fatalf("filtered plan %+v, %v", p, err)
	}
}
