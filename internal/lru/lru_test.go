package lru

import (
	"testing"
	"time"
)

func key(b byte) [32]byte { return [32]byte{b} }

func TestLeastRecentlyUsedIsEvicted(t *testing.T) {
	c := New[string](2)
	now := time.Unix(1000, 0)
	until := now.Add(time.Minute)
	c.Put(key(1), "a", until)
	c.Put(key(2), "b", until)
	if _, ok := c.Get(key(1), now); !ok { // a is now more recent than b
		t.Fatal("a missing")
	}
	c.Put(key(3), "c", until)
	if _, ok := c.Get(key(2), now); ok {
		t.Fatal("b (least recently used) was not evicted")
	}
	if v, ok := c.Get(key(1), now); !ok || v != "a" {
		t.Fatal("a was evicted")
	}
	if c.Len() != 2 {
		t.Fatalf("len %d", c.Len())
	}
}

func TestExpiredEntriesAreDropped(t *testing.T) {
	c := New[int](4)
	now := time.Unix(1000, 0)
	c.Put(key(1), 7, now.Add(time.Second))
	if _, ok := c.Get(key(1), now.Add(time.Second)); ok {
		t.Fatal("entry served at its deadline")
	}
	if c.Len() != 0 {
		t.Fatal("expired entry not removed")
	}
	c.Put(key(1), 7, now.Add(time.Second))
	c.Put(key(1), 8, now.Add(time.Minute)) // replace
	if v, ok := c.Get(key(1), now.Add(2*time.Second)); !ok || v != 8 || c.Len() != 1 {
		t.Fatalf("replaced entry: %v %v len %d", v, ok, c.Len())
	}
}
