package proxy

import "sync"

// copyBufferSize is the size of the buffer httputil.ReverseProxy copies a
// response body through: its own default, so pooling changes no
// behaviour, only where the buffer comes from.
const copyBufferSize = 32 << 10

// copyBuffers is the ReverseProxy's BufferPool. Without one it makes a
// fresh 32 KiB buffer for every proxied response: profiles of bench/proxy
// showed it was three quarters of the bytes allocated per request. A
// buffer holds only bytes of a response already written to its client,
// and the next user overwrites what it reads; nothing crosses requests.
//
// The pool keeps array pointers, so that Put does not allocate a slice
// header as a pool of *[]byte would.
type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if a, ok := c.pool.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (c *copyBuffers) Put(b []byte) {
	if cap(b) < copyBufferSize {
		return // not one of ours
	}
	c.pool.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
}

// proxyBuffers is shared by every route: a buffer is in use only while
// one response is copied.
var proxyBuffers = &copyBuffers{}
