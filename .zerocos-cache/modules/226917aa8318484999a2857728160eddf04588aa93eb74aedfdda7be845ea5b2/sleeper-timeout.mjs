import { writeFileSync } from 'node:fs';
writeFileSync(process.argv[2], String(process.pid));
setTimeout(() => {}, 30_000);
