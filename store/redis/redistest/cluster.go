package redistest

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/redis"
)

// Cluster is a Redis Cluster of three masters (no replicas) of the test
// binary's own, on free loopback ports: redis-server --cluster-enabled
// yes, joined by redis-cli --cluster create. One is started per package,
// on first use (ClusterServer); Main stops it.
type Cluster struct {
	// Addrs are the masters' host:port.
	Addrs []string

	dir  string
	cmds []*exec.Cmd
}

var (
	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error
)

// ClusterServer returns the package's cluster, started on first use. It
// fails the test, loudly, when redis-server or redis-cli is missing
// (./scripts/test installs them) or the cluster does not form.
func ClusterServer(t testing.TB) *Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = startCluster() })
	if clusterErr != nil {
		t.Fatalf("Redis Cluster for the tests: %v", clusterErr)
	}
	return cluster
}

// CloseCluster stops the package's cluster, if one was started (Main
// calls it).
func CloseCluster() {
	if cluster == nil {
		return
	}
	for _, c := range cluster.cmds {
		c.Process.Kill()
		c.Wait()
	}
	os.RemoveAll(cluster.dir)
}

// freeClusterPort finds a port p with p and p+10000 (the cluster bus)
// both free on loopback.
func freeClusterPort(taken map[int]bool) (int, error) {
	for range 200 {
		n, err := rand.Int(rand.Reader, big.NewInt(20000))
		if err != nil {
			return 0, err
		}
		p := 20000 + int(n.Int64())
		if taken[p] || taken[p+10000] || taken[p-10000] {
			continue
		}
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		taken[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free pair of loopback ports")
}

func startCluster() (c *Cluster, err error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is required (./scripts/test installs it): %w", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is required (./scripts/test installs it): %w", err)
	}
	dir, err := os.MkdirTemp("", "aero2-redis-cluster-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			cluster = c
			CloseCluster()
			cluster = nil
		}
	}()
	taken := map[int]bool{}
	for i := range 3 {
		p, err := freeClusterPort(taken)
		if err != nil {
			return c, err
		}
		nd := fmt.Sprintf("%s/%d", dir, i)
		if err := os.Mkdir(nd, 0o700); err != nil {
			return c, err
		}
		cmd := exec.Command(server, "--port", strconv.Itoa(p), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", nd+"/nodes.conf",
			"--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
			// DEBUG SLEEP, from loopback only: a test stalls a master with it.
			"--enable-debug-command", "local",
			"--dir", nd, "--logfile", nd+"/redis.log")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return c, err
		}
		c.cmds = append(c.cmds, cmd)
		addr := "127.0.0.1:" + strconv.Itoa(p)
		c.Addrs = append(c.Addrs, addr)
	}
	for _, a := range c.Addrs {
		deadline := time.Now().Add(10 * time.Second)
		for !ping(a) {
			if time.Now().After(deadline) {
				return c, fmt.Errorf("redis-server did not start on %s (log in %s)", a, dir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		return c, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must agree that all slots are served before a test runs.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, a := range c.Addrs {
			n := goredis.NewClient(&goredis.Options{Addr: a})
			info, err := n.ClusterInfo(context.Background()).Result()
			n.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				ok = false
			}
		}
		if ok {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the cluster on %v did not reach cluster_state:ok", c.Addrs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Config returns store settings for the cluster, with a key prefix of the
// test's own.
func (c *Cluster) Config(t testing.TB) config.Redis {
	return config.Redis{
		Addrs:        c.Addrs,
		Cluster:      true,
		KeyPrefix:    "aero2test-" + rand.Text()[:12],
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	}
}

// Open opens a store on the cluster (see Config), closed when the test
// ends.
func (c *Cluster) Open(t testing.TB) *redis.Store {
	t.Helper()
	return c.OpenWith(t, c.Config(t))
}

// OpenWith is Open with a configuration of the test's own (from Config,
// changed).
func (c *Cluster) OpenWith(t testing.TB, cfg config.Redis) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open a store on the Redis Cluster: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Node returns a plain client of one master, closed when the test ends.
func (c *Cluster) Node(t testing.TB, addr string) *goredis.Client {
	n := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { n.Close() })
	return n
}

// nodeIDs maps each master's address to its cluster node ID.
func (c *Cluster) nodeIDs(t testing.TB) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, a := range c.Addrs {
		id, err := c.Node(t, a).Do(context.Background(), "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		ids[a] = id
	}
	return ids
}

// Owner returns the address of the master that serves slot.
func (c *Cluster) Owner(t testing.TB, slot int) string {
	t.Helper()
	owner, err := ownerAt(t, c.Node(t, c.Addrs[0]), slot)
	if err != nil || owner == "" {
		t.Fatalf("no master serves slot %d: %v", slot, err)
	}
	return owner
}

// ownerAt returns the master that serves slot in node n's view (CLUSTER
// SHARDS), or "".
func ownerAt(t testing.TB, n *goredis.Client, slot int) (string, error) {
	shards, err := n.ClusterShards(context.Background()).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < int(r.Start) || slot > int(r.End) {
				continue
			}
			for _, nd := range sh.Nodes {
				if nd.Role == "master" {
					return nd.IP + ":" + strconv.Itoa(int(nd.Port)), nil
				}
			}
		}
	}
	return "", nil
}

// MigrateSlot moves slot from its master to another as redis-cli
// --cluster reshard does: IMPORTING on the target, MIGRATING on the
// source, MIGRATE of its keys in small batches (with a pause between, so
// that load meets the slot half moved), then SETSLOT NODE everywhere.
func (c *Cluster) MigrateSlot(t testing.TB, slot int, pause time.Duration) (from, to string, moved int) {
	t.Helper()
	ids := c.nodeIDs(t)
	ctx := context.Background()
	from = c.Owner(t, slot)
	for _, a := range c.Addrs {
		if a != from {
			to = a
			break
		}
	}
	src, dst := c.Node(t, from), c.Node(t, to)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("migrating slot %d from %s to %s: %v", slot, from, to, err)
		}
	}
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from]).Err())
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to]).Err())
	host, port, _ := strings.Cut(to, ":")
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 3).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src.Do(ctx, args...).Err())
		moved += len(keys)
		time.Sleep(pause)
	}
	// The target first, then the source, then the third master (the
	// order redis-cli uses), so no node ever thinks the slot unowned.
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[to]).Err())
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[to]).Err())
	for _, a := range c.Addrs {
		if a != from && a != to {
			must(c.Node(t, a).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[to]).Err())
		}
	}
	// As redis-cli does before its next step: every master agrees on the
	// slot's new owner (the importing node's new config epoch has spread).
	// On a loaded machine (the race detector on every package at once)
	// that took longer than 10 s once; redis-cli waits without a limit.
	deadline := time.Now().Add(30 * time.Second)
	for !c.agree(t, slot, to) {
		if time.Now().After(deadline) {
			t.Fatalf("the masters do not agree that %s serves slot %d", to, slot)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return from, to, moved
}

// agree reports whether every master says that owner serves slot.
func (c *Cluster) agree(t testing.TB, slot int, owner string) bool {
	for _, a := range c.Addrs {
		if got, err := ownerAt(t, c.Node(t, a), slot); err != nil || got != owner {
			return false
		}
	}
	return true
}
