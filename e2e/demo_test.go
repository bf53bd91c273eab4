package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the demo binary built once for all tests of the package.
var (
	binDir    string
	buildOnce sync.Once
	demoBin   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wmprom-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildDemo compiles ./demo as a user would run it, so the tests exercise the
// real program, flags and all.
func buildDemo(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		demoBin = filepath.Join(binDir, "demo")
		cmd := exec.Command(goBin, "build", "-o", demoBin, "./demo")
		cmd.Dir = ".." // the module root, seen from this package's directory
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./demo: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return demoBin
}

// lockedBuffer collects a subprocess's stderr while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// demoProc is a running demo.
type demoProc struct {
	cmd     *exec.Cmd
	url     string // its /metrics URL, as it printed it
	stderr  *lockedBuffer
	done    chan struct{}
	waitErr error
}

var metricsLine = regexp.MustCompile(`metrics at (http://\S+/metrics)`)

// startDemo runs the demo on a free loopback port and waits for the line that
// announces its /metrics URL. The demo is interrupted at cleanup if the test
// did not stop it.
func startDemo(t *testing.T, args ...string) *demoProc {
	t.Helper()
	return startDemoEnv(t, nil, args...)
}

// startDemoEnv is startDemo with env (NAME=value) added to the demo's
// environment, such as the OTEL_* variables of its OTLP push.
func startDemoEnv(t *testing.T, env []string, args ...string) *demoProc {
	t.Helper()
	bin := buildDemo(t)
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "DEMO_BROKERS=", "KAFKA_BROKERS=", "AMQP_URL=", "NATS_URL=", "REDIS_ADDR=")
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &demoProc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := metricsLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-d.done
			}
		}
		if t.Failed() {
			t.Logf("demo %v stderr:\n%s", args, tail(d.stderr.String(), 60))
		}
	})
	select {
	case d.url = <-urls:
	case <-d.done:
		t.Fatalf("demo exited before serving metrics: %v\n%s", d.waitErr, d.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not print its metrics URL within 30s\n%s", d.stderr.String())
	}
	return d
}

// stop interrupts the demo like Ctrl-C and requires a clean exit: status 0
// and the closing log line, within the routers' close timeout.
func (d *demoProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("interrupt demo: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("demo did not exit within 20s of Ctrl-C\n%s", tail(d.stderr.String(), 40))
	}
	if d.waitErr != nil {
		t.Fatalf("demo exit after Ctrl-C: %v\n%s", d.waitErr, tail(d.stderr.String(), 40))
	}
	if !strings.Contains(d.stderr.String(), "demo stopped cleanly") {
		t.Fatalf("demo exited without its clean-shutdown line\n%s", tail(d.stderr.String(), 40))
	}
}

// hostPort is the demo's listen address, as a Prometheus scrape target.
func (d *demoProc) hostPort() string {
	return strings.TrimSuffix(strings.TrimPrefix(d.url, "http://"), "/metrics")
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = append([]string{fmt.Sprintf("... (%d lines before)", len(parts)-lines)}, parts[len(parts)-lines:]...)
	}
	return strings.Join(parts, "\n")
}

// freePort finds a loopback port for a server that cannot listen on port 0
// and report back, such as Prometheus.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every interval until it holds or timeout passes; it
// returns cond's last complaint, or nil.
func eventually(ctx context.Context, timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// TestDemoHealthcheck covers the probe the compose file uses: the demo
// binary run with -healthcheck against a running demo, and against nothing.
func TestDemoHealthcheck(t *testing.T) {
	t.Parallel()
	demo := startDemo(t, "-brokers", "gochannel")
	bin := buildDemo(t)
	if out, err := exec.Command(bin, "-healthcheck", "-addr", demo.hostPort()).CombinedOutput(); err != nil {
		t.Errorf("healthcheck of a running demo: %v\n%s", err, out)
	}
	err := exec.Command(bin, "-healthcheck", "-addr", deadAddr(t)).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("healthcheck of nothing: %v, want exit status 1", err)
	}
	if out, err := exec.Command(bin, "-h").CombinedOutput(); err != nil || !strings.Contains(string(out), "-brokers") {
		t.Errorf("demo -h: %v, want exit 0 and the flag list\n%s", err, out)
	}
	demo.stop(t)
}
