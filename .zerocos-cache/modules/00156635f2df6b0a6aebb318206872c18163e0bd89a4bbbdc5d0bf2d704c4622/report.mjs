const args = process.argv.slice(2);
console.log(`args ${JSON.stringify(args)}`);
process.stdout.write(`cwd has ${process.cwd().length > 0}\n`);
console.error(`exiting with ${args[3] ?? args[args.length - 1]}`);
process.exitCode = Number(args[3] ?? 0);