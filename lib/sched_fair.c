/* SPDX-License-Identifier: MIT */
/*
 * sched_fair.c - weighted fair sharing of the workers among groups of jobs
 * (tenants, connections, job classes), with FIFO order inside a group and an
 * optional cap on how many jobs of one group run at once.
 *
 * The algorithm is deficit round-robin (Shreedhar and Varghese, 1995),
 * counted in jobs rather than bytes: every job costs one. The groups that
 * have queued jobs and are under their cap stand in a round, a FIFO of
 * groups. The group at the head has a turn: it may start up to `weight`
 * jobs, one per pop, and then goes to the back of the round. A group whose
 * queue empties leaves the round and forfeits what is left of its turn, so
 * an idle group cannot save up credit and burst later. A newly backlogged
 * group joins at the back with a fresh turn.
 *
 * The cap (struct aq_sched_fair_params.max_running) is kept by taking a
 * group out of the round the moment its running count reaches the cap,
 * with its queue and what is left of its turn intact, and putting it back
 * at the tail when done() brings the count below the cap again. So pop
 * never meets a capped group and never walks past one: it is O(1) whatever
 * the number of capped groups, and returns NULL exactly when every group
 * with queued jobs is capped.
 *
 * Invariants, all under the pool's scheduler lock:
 *  - a group is in the hash table iff it has queued or running jobs;
 *  - a group is in the round iff it has queued jobs and running < cap
 *    (no cap: iff it has queued jobs), and it is there once;
 *  - 0 <= credit <= weight; credit 0 means "the next pop starts a turn";
 *  - a job's slot 0 links it into its group's queue while it is queued,
 *    and slot 1 points to its group from push until done(), which is how
 *    done() finds the group without a lookup.
 *
 * Fairness bound: while a set of groups stays backlogged and uncapped,
 * every round gives group g exactly weight(g) starts, so over n rounds the
 * shares of starts are the weights' ratios exactly. A job that arrives in
 * a group with nothing queued starts after at most the sum of the weights
 * of the other groups in the round (one whole turn each) other starts: a
 * flood from one tenant of weight w delays another tenant's first job by
 * at most w starts. The bound counts from the moment the job reaches the
 * policy, which is the next time any worker looks for work: the seam then
 * moves everything the ring holds into the policy (scheduler.c).
 *
 * Costs: push O(1) amortised (an expected O(1) hash lookup, the table
 * doubling as groups grow), pop O(1), done() O(1) amortised (the table
 * halves when it is mostly empty). Memory is one group record per group
 * with queued or running jobs, a bucket array of at most about twice that,
 * and at most FREE_GROUPS_MAX recycled group records, so a tenant that
 * comes and goes does not malloc and free each time.
 *
 * Weak spots:
 *  - Fairness is in job starts, not in worker time: a group whose jobs run
 *    ten times longer gets ten times the worker time at the same weight.
 *    Give such a group a proportionally smaller weight.
 *  - A turn is `weight` consecutive starts, so large weights make coarse
 *    interleaving: 100:200 has the shares of 1:2 but others wait up to 200
 *    starts. Use the smallest weights that express the ratio.
 *  - A job that waits (aq_future_get()) for a job of its own pool still
 *    queued runs it in place, past this policy (help.c, scheduler.c): so
 *    n waiters under a cap of n cannot deadlock their group, but the job
 *    so run is not counted against the cap.
 *  - The hash is keyed with a per-pool seed taken from the address of the
 *    state, which spreads ordinary keys well but is no defence against an
 *    adversary choosing keys to collide: they would lengthen one chain and
 *    make push slower, never wrong.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "asyncq.h"
#include "fault.h"

/* Largest accepted max_running. Any cap above the number of jobs that can
 * run at once is the same as none, so the limit only catches nonsense
 * such as a negative number converted to unsigned. */
#define FAIR_RUNNING_MAX 1000000u

/* Buckets of a new table, and the fewest it shrinks to (a power of 2). */
#define BUCKETS_MIN 16u

/* Group records kept for reuse once their group has gone idle. */
#define FREE_GROUPS_MAX 64u

/* One group: its queue of jobs and its place in the round. */
struct fair_group {
	uint64_t key;                  /* aq_sched_job_group() of its jobs */
	struct fair_group *hash_next;  /* next in its bucket's chain */
	struct fair_group *round_next; /* next in the round while in it; next
					  in the free list once recycled */
	aq_sched_job *head, *tail;     /* queued jobs in arrival order */
	unsigned weight;               /* starts per turn: the weight of the
					  latest job pushed */
	unsigned credit;               /* starts left in the current turn */
	unsigned running;              /* popped and not yet done() */
};

struct fair {
	struct fair_group **buckets;   /* chains of groups by hashed key */
	size_t nbuckets;               /* a power of 2, >= BUCKETS_MIN */
	size_t ngroups;                /* groups in the table */
	uint64_t seed;                 /* mixed into every key's hash */
	struct fair_group *round_head; /* whose turn it is */
	struct fair_group *round_tail;
	struct fair_group *free_groups; /* recycled records */
	unsigned nfree;
	unsigned max_running; /* 0 = no cap */
};

/* ---- the job's two slots ------------------------------------------------- */

static inline aq_sched_job **job_next(aq_sched_job *job)
{
	return (aq_sched_job **)&aq_sched_job_slots(job)[0];
}

static inline struct fair_group **job_group(aq_sched_job *job)
{
	return (struct fair_group **)&aq_sched_job_slots(job)[1];
}

/* ---- the hash table of groups -------------------------------------------- */

/* A 64-bit finaliser (xor-shift and odd multiplies): every key bit moves
 * every hash bit, so sequential keys and keys that differ only in their
 * high bits spread over all buckets. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static inline size_t bucket_of(const struct fair *q, uint64_t key,
			       size_t nbuckets)
{
	return (size_t)(mix64(key ^ q->seed) & (nbuckets - 1));
}

static struct fair_group *group_find(const struct fair *q, uint64_t key)
{
	struct fair_group *g = q->buckets[bucket_of(q, key, q->nbuckets)];

	while (g && g->key != key)
		g = g->hash_next;
	return g;
}

/*
 * Move every group into a table of nbuckets. An allocation failure is not
 * an error: the table keeps its size and its chains just grow longer, so
 * neither push nor done() ever fails because of the table.
 */
static void table_resize(struct fair *q, size_t nbuckets)
{
	struct fair_group **fresh = aq__calloc(nbuckets, sizeof(*fresh));

	if (!fresh)
		return;
	for (size_t i = 0; i < q->nbuckets; i++) {
		struct fair_group *g = q->buckets[i], *next;

		for (; g; g = next) {
			size_t b = bucket_of(q, g->key, nbuckets);

			next = g->hash_next;
			g->hash_next = fresh[b];
			fresh[b] = g;
		}
	}
	free(q->buckets);
	q->buckets = fresh;
	q->nbuckets = nbuckets;
}

/* A group record for key, recycled or new, in the table; NULL if there is
 * no memory (the table is then unchanged). */
static struct fair_group *group_create(struct fair *q, uint64_t key)
{
	struct fair_group *g = q->free_groups;
	size_t b;

	if (g) {
		q->free_groups = g->round_next;
		q->nfree--;
	} else {
		g = aq__malloc(sizeof(*g));
		if (!g)
			return NULL;
	}
	*g = (struct fair_group){ .key = key };
	b = bucket_of(q, key, q->nbuckets);
	g->hash_next = q->buckets[b];
	q->buckets[b] = g;
	/* Load factor 1: chains stay short on average. Doubling makes the
	 * rehash O(1) amortised per group. */
	if (++q->ngroups > q->nbuckets)
		table_resize(q, q->nbuckets * 2);
	return g;
}

/* The group has no queued and no running jobs: out of the table, into the
 * free list or back to the allocator. */
static void group_release(struct fair *q, struct fair_group *g)
{
	struct fair_group **link =
		&q->buckets[bucket_of(q, g->key, q->nbuckets)];

	while (*link != g)
		link = &(*link)->hash_next;
	*link = g->hash_next;
	q->ngroups--;
	if (q->nfree < FREE_GROUPS_MAX) {
		g->round_next = q->free_groups;
		q->free_groups = g;
		q->nfree++;
	} else {
		free(g);
	}
	/* Shrink at 1/8 full to half size: the new table is then at most a
	 * quarter full, far from the doubling point, so a population that
	 * hovers around a boundary cannot make the table flap. */
	if (q->nbuckets > BUCKETS_MIN && q->ngroups < q->nbuckets / 8)
		table_resize(q, q->nbuckets / 2);
}

/* ---- the round ----------------------------------------------------------- */

static inline bool group_capped(const struct fair *q,
				const struct fair_group *g)
{
	return q->max_running && g->running >= q->max_running;
}

/* Should g be in the round? (The second invariant.) */
static inline bool group_eligible(const struct fair *q,
				  const struct fair_group *g)
{
	return g->head && !group_capped(q, g);
}

static void round_append(struct fair *q, struct fair_group *g)
{
	g->round_next = NULL;
	if (q->round_tail)
		q->round_tail->round_next = g;
	else
		q->round_head = g;
	q->round_tail = g;
}

/* Take the head group out of the round. */
static void round_drop_head(struct fair *q)
{
	struct fair_group *g = q->round_head;

	q->round_head = g->round_next;
	if (!q->round_head)
		q->round_tail = NULL;
	g->round_next = NULL;
}

/* ---- the ops ------------------------------------------------------------- */

static int fair_init(void **state, const void *params)
{
	const struct aq_sched_fair_params *p = params;
	struct fair *q;

	if (p && p->max_running > FAIR_RUNNING_MAX)
		return -EINVAL;
	q = aq__calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->buckets = aq__calloc(BUCKETS_MIN, sizeof(*q->buckets));
	if (!q->buckets) {
		free(q);
		return -ENOMEM;
	}
	q->nbuckets = BUCKETS_MIN;
	/* Two pools get different seeds (ASLR makes them differ between
	 * runs too); no process-global state needed. */
	q->seed = mix64((uint64_t)(uintptr_t)q);
	q->max_running = p ? p->max_running : 0;
	*state = q;
	return 0;
}

static int fair_push(void *state, aq_sched_job *job)
{
	struct fair *q = state;
	uint64_t key = aq_sched_job_group(job);
	unsigned weight = aq_sched_job_weight(job);
	struct fair_group *g = group_find(q, key);
	bool was_eligible;

	if (!g) {
		g = group_create(q, key);
		if (!g)
			return -ENOMEM; /* nothing changed: the seam fails
					   this job alone */
	}
	/* Submit already keeps weights in range; a policy keeps its own
	 * invariants all the same. */
	if (weight == 0)
		weight = 1;
	else if (weight > AQ_WEIGHT_MAX)
		weight = AQ_WEIGHT_MAX;
	g->weight = weight;
	if (g->credit > weight)
		g->credit = weight; /* a lowered weight binds this turn too */

	was_eligible = group_eligible(q, g);
	*job_next(job) = NULL;
	*job_group(job) = g;
	if (g->tail)
		*job_next(g->tail) = job;
	else
		g->head = job;
	g->tail = job;
	/* Only a group that had nothing queued (and is under its cap) is
	 * new to the round; it joins at the back, so it waits at most one
	 * turn of each group already there. */
	if (!was_eligible && group_eligible(q, g))
		round_append(q, g);
	return 0;
}

static aq_sched_job *fair_pop(void *state)
{
	struct fair *q = state;
	struct fair_group *g = q->round_head;
	aq_sched_job *job;

	if (!g)
		return NULL; /* nothing queued, or every such group capped */
	if (g->credit == 0)
		g->credit = g->weight; /* its turn begins */
	job = g->head;
	g->head = *job_next(job);
	if (!g->head)
		g->tail = NULL;
	g->credit--;
	g->running++;

	if (!g->head) {
		/* Emptied: out of the round, and the rest of its turn is
		 * forfeit so that idleness earns nothing. */
		round_drop_head(q);
		g->credit = 0;
	} else if (group_capped(q, g)) {
		/* Out of the round until done(); it keeps what is left of
		 * its turn, so being capped neither gains nor loses it a
		 * turn's worth of starts. */
		round_drop_head(q);
	} else if (g->credit == 0 && g->round_next) {
		/* Turn over: to the back. (Alone in the round it simply
		 * starts its next turn where it stands.) */
		round_drop_head(q);
		round_append(q, g);
	}
	return job;
}

static void fair_done(void *state, aq_sched_job *job)
{
	struct fair *q = state;
	struct fair_group *g = *job_group(job);
	bool was_eligible = group_eligible(q, g);

	g->running--;
	/* A capped group with queued jobs is below its cap again: back
	 * into the round, at the tail. */
	if (!was_eligible && group_eligible(q, g))
		round_append(q, g);
	else if (!g->head && g->running == 0)
		group_release(q, g);
}

static void fair_destroy(void *state)
{
	struct fair *q = state;
	struct fair_group *g, *next;

	/* The pool destroys the policy once every job has resolved, so the
	 * table is normally empty; free whatever is left all the same. */
	for (size_t i = 0; i < q->nbuckets; i++)
		for (g = q->buckets[i]; g; g = next) {
			next = g->hash_next;
			free(g);
		}
	for (g = q->free_groups; g; g = next) {
		next = g->round_next;
		free(g);
	}
	free(q->buckets);
	free(q);
}

static const struct aq_sched_ops fair_ops = {
	.name = "fair",
	.init = fair_init,
	.push = fair_push,
	.pop = fair_pop,
	.done = fair_done,
	.destroy = fair_destroy,
};

AQ_API const struct aq_sched_ops *aq_sched_fair(void)
{
	return &fair_ops;
}
