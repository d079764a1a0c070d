// The GraphQL-over-HTTP spec's own audit suite (graphql-http's serverAudits)
// against HINDSIGHT_URL (the /graphql endpoint). Prints every audit and the
// counts per requirement level; exits 1 when a MUST or a SHOULD fails.
import { auditServer } from 'graphql-http';

const url = process.env.HINDSIGHT_URL;
if (!url) {
  console.error('HINDSIGHT_URL is not set');
  process.exit(2);
}
const results = await auditServer({ url });
const counts = {};
let failed = 0;
for (const r of results) {
  const level = r.name.split(' ')[0];
  counts[level] ??= { ok: 0, all: 0 };
  counts[level].all++;
  if (r.status === 'ok') {
    counts[level].ok++;
    console.log(`ok    ${r.id} ${r.name}`);
    continue;
  }
  const detail = r.reason + (r.response ? ` (status ${r.response.status})` : '');
  console.log(`${r.status.padEnd(5)} ${r.id} ${r.name}: ${detail}`);
  if (level === 'MUST' || level === 'SHOULD') failed++;
}
for (const [level, c] of Object.entries(counts)) console.log(`${level} ${c.ok}/${c.all}`);
process.exit(failed > 0 ? 1 : 0);
