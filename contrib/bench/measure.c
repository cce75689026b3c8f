/* measure: the timing half of contrib/bench/bench.sh. It measures and prints figures; it
 * judges nothing. Modes (all times CLOCK_MONOTONIC, printed in microseconds):
 *
 *   measure spawn RUNS NAME=CMD [NAME=CMD ...]
 *       runs each CMD (words split on spaces) RUNS times, round-robin so drift hits all
 *       alike, stdout/stderr to /dev/null; prints "spawn NAME median p10 p90 mean failures
 *       cpu_median" (cpu: user + system time of the whole process tree, from wait4).
 *   measure signals COUNT NAME CMD...
 *       runs CMD followed by "<self> sigchild FD"; sends COUNT SIGUSR2 to the process it
 *       started (the shim), one at a time, after 3 unmeasured ones (the warm-up), and reads
 *       the child's handler timestamp back;
 *       prints "signals NAME median p99 max lost". With NAME "direct" CMD is empty and the
 *       signals go straight to the child (the floor). With MEASURE_RAW=FILE each latency
 *       (ns) is also appended to FILE.
 *   measure orphans COUNT
 *       (the child in the reaping test, run as pid 2 of a fresh pid namespace under the
 *       shim as pid 1) makes COUNT orphans by double fork, then waits until pid 1 has
 *       reaped every one; prints "reap total_us drain_us shim_cpu_us max_zombies
 *       max_unreaped" (drain: from the last orphan made until all are reaped; shim_cpu: the
 *       CPU time pid 1 used meanwhile, from /proc/1/schedstat).
 *   measure sigchild FD   (the child in the signal test)
 * The floor of the spawn test (fork, exec, wait) is floor.c, built static.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Percentile p (0-100) of a sorted array, nearest rank. */
static double pct(const int64_t *v, int n, double p)
{
	int i = (int)(p / 100.0 * (n - 1) + 0.5);
	return v[i] / 1000.0;
}

/* Splits a copy of s on spaces into a NULL-terminated argv with room for `extra` more. */
static char **split(const char *s, int extra, int *argc)
{
	char *copy = strdup(s);
	char **argv = calloc(strlen(s) + extra + 2, sizeof(char *));
	int n = 0;
	for (char *w = strtok(copy, " "); w; w = strtok(NULL, " "))
		argv[n++] = w;
	*argc = n;
	return argv;
}

static int run_spawn(int runs, int ncmd, char **specs)
{
	char **names = calloc(ncmd, sizeof(char *));
	char ***argvs = calloc(ncmd, sizeof(char **));
	int64_t **times = calloc(ncmd, sizeof(int64_t *));
	int64_t **cpu = calloc(ncmd, sizeof(int64_t *));
	int *fails = calloc(ncmd, sizeof(int));
	for (int c = 0; c < ncmd; c++) {
		char *eq = strchr(specs[c], '=');
		if (!eq) {
			fprintf(stderr, "measure: '%s' is not NAME=CMD\n", specs[c]);
			return 2;
		}
		*eq = 0;
		names[c] = specs[c];
		int argc;
		argvs[c] = split(eq + 1, 0, &argc);
		times[c] = calloc(runs, sizeof(int64_t));
		cpu[c] = calloc(runs, sizeof(int64_t));
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	/* A few unmeasured runs first: page cache, dynamic loader caches. */
	for (int r = -20; r < runs; r++) {
		for (int c = 0; c < ncmd; c++) {
			pid_t pid;
			int status;
			struct rusage ru;
			int64_t t0 = now_ns();
			if (posix_spawn(&pid, argvs[c][0], &fa, NULL, argvs[c], environ) != 0)
				die("posix_spawn");
			if (wait4(pid, &status, 0, &ru) < 0)
				die("wait4");
			int64_t t1 = now_ns();
			if (r < 0)
				continue;
			times[c][r] = t1 - t0;
			/* user + system time of the command and everything it waited for */
			cpu[c][r] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
				    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				fails[c]++;
		}
	}
	for (int c = 0; c < ncmd; c++) {
		double sum = 0;
		for (int r = 0; r < runs; r++)
			sum += times[c][r];
		qsort(times[c], runs, sizeof(int64_t), cmp_i64);
		qsort(cpu[c], runs, sizeof(int64_t), cmp_i64);
		printf("spawn %s %.1f %.1f %.1f %.1f %d %.1f\n", names[c], pct(times[c], runs, 50),
		       pct(times[c], runs, 10), pct(times[c], runs, 90), sum / runs / 1000.0,
		       fails[c], pct(cpu[c], runs, 50));
	}
	return 0;
}

/* The signal test's child: SIGUSR2's handler writes its CLOCK_MONOTONIC time to FD. */
static int sig_fd = -1;

static void on_usr2(int sig)
{
	(void)sig;
	int64_t t = now_ns();
	ssize_t unused = write(sig_fd, &t, sizeof t);
	(void)unused;
}

static int run_sigchild(int fd)
{
	sig_fd = fd;
	struct sigaction sa = {0};
	sa.sa_handler = on_usr2;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Ready: our pid, as a negative number so it cannot be taken for a timestamp. */
	int64_t ready = -(int64_t)getpid();
	if (write(fd, &ready, sizeof ready) != sizeof ready)
		return 1;
	for (;;)
		pause();
}

static int read_i64(int fd, int64_t *v, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return read(fd, v, sizeof *v) == sizeof *v ? 0 : -1;
}

#define SIGNAL_WARMUP 3

static int run_signals(int count, const char *name, int argc, char **cmd, const char *self)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	char fdtext[16];
	snprintf(fdtext, sizeof fdtext, "%d", p[1]);
	char **argv = calloc(argc + 4, sizeof(char *));
	for (int i = 0; i < argc; i++)
		argv[i] = cmd[i];
	argv[argc] = (char *)self;
	argv[argc + 1] = "sigchild";
	argv[argc + 2] = fdtext;
	/* The shim and the child start with SIGUSR2 unblocked and at its default. */
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(p[0]);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	int64_t ready;
	if (read_i64(p[0], &ready, 10000) < 0 || ready >= 0) {
		fprintf(stderr, "measure: %s: the child did not start\n", name);
		kill(pid, SIGKILL);
		return 1;
	}
	pid_t child = (pid_t)-ready;
	pid_t target = argc == 0 ? child : pid;
	usleep(100000);
	/* Unmeasured warm-up signals: the first ones fault in the code pages of every shim's
	 * signal path (a larger binary has more), once per start. Without them, each round's
	 * first signal would land in the p99, which then says how many rounds there were. */
	for (int i = 0; i < SIGNAL_WARMUP; i++) {
		int64_t t1;
		kill(target, SIGUSR2);
		read_i64(p[0], &t1, 1000);
	}
	int64_t *lat = calloc(count, sizeof(int64_t));
	int lost = 0, n = 0;
	for (int i = 0; i < count; i++) {
		int64_t t0 = now_ns(), t1;
		kill(target, SIGUSR2);
		if (read_i64(p[0], &t1, 1000) < 0) {
			lost++;
			continue;
		}
		lat[n++] = t1 - t0;
	}
	kill(child, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (n == 0) {
		printf("signals %s - - - %d\n", name, lost);
		return 0;
	}
	/* MEASURE_RAW=FILE: also append each latency (ns), for pooling several rounds. */
	const char *raw = getenv("MEASURE_RAW");
	FILE *rf = raw ? fopen(raw, "a") : NULL;
	for (int i = 0; rf && i < n; i++)
		fprintf(rf, "%lld\n", (long long)lat[i]);
	if (rf)
		fclose(rf);
	qsort(lat, n, sizeof(int64_t), cmp_i64);
	printf("signals %s %.1f %.1f %.1f %d\n", name, pct(lat, n, 50), pct(lat, n, 99),
	       lat[n - 1] / 1000.0, lost);
	return 0;
}

/* Counts, in this pid namespace's /proc, the processes other than pid 1 and us that are
 * pid 1's children: unreaped orphans, and among them the zombies. */
static void count_orphans(pid_t self, int *unreaped, int *zombies)
{
	*unreaped = *zombies = 0;
	DIR *d = opendir("/proc");
	if (!d)
		die("/proc");
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 1 || pid == self)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = 0;
		char *rp = strrchr(buf, ')');
		char state;
		int ppid;
		if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || ppid != 1)
			continue;
		(*unreaped)++;
		*zombies += state == 'Z';
	}
	closedir(d);
}

/* CPU time pid 1 (the shim) has had, in nanoseconds; -1 if unknown. */
static int64_t pid1_cpu_ns(void)
{
	long long ns = -1;
	FILE *f = fopen("/proc/1/schedstat", "r");
	if (f) {
		if (fscanf(f, "%lld", &ns) != 1)
			ns = -1;
		fclose(f);
	}
	return ns;
}

static int run_orphans(int count)
{
	pid_t self = getpid();
	if (self != 2)
		fprintf(stderr, "measure: orphans: expected pid 2 under the shim as pid 1, am %d\n",
			self);
	int max_unreaped = 0, max_zombies = 0, u, z;
	int64_t cpu0 = pid1_cpu_ns();
	int64_t t0 = now_ns();
	for (int i = 0; i < count; i++) {
		pid_t mid = fork();
		if (mid < 0)
			die("fork");
		if (mid == 0) {
			/* The grandchild is orphaned when its parent exits right away. */
			if (fork() == 0)
				_exit(0);
			_exit(0);
		}
		while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
			;
		if (i % 20 == 19) {
			count_orphans(self, &u, &z);
			if (u > max_unreaped)
				max_unreaped = u;
			if (z > max_zombies)
				max_zombies = z;
		}
	}
	int64_t t1 = now_ns();
	/* Now wait until every orphan is reaped. */
	for (;;) {
		count_orphans(self, &u, &z);
		if (z > max_zombies)
			max_zombies = z;
		if (u == 0)
			break;
		usleep(100);
	}
	int64_t t2 = now_ns();
	int64_t cpu1 = pid1_cpu_ns();
	printf("reap %.1f %.1f %.1f %d %d\n", (t2 - t0) / 1000.0, (t2 - t1) / 1000.0,
	       cpu0 < 0 || cpu1 < 0 ? -1.0 : (cpu1 - cpu0) / 1000.0, max_zombies, max_unreaped);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "spawn") && argc > 3)
		return run_spawn(atoi(argv[2]), argc - 3, argv + 3);
	if (!strcmp(mode, "signals") && argc > 3)
		return run_signals(atoi(argv[2]), argv[3], argc - 4, argv + 4, argv[0]);
	if (!strcmp(mode, "sigchild") && argc == 3)
		return run_sigchild(atoi(argv[2]));
	if (!strcmp(mode, "orphans") && argc == 3)
		return run_orphans(atoi(argv[2]));
	fprintf(stderr, "usage: see the comment at the top of measure.c\n");
	return 2;
}
