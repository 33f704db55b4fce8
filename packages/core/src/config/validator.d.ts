// The configuration schema compiled by scripts/gen-validator.mjs into dist/config/validator.js
// after tsc (npm run build): Ajv's standalone code, so no process compiles the schema at start.
import type { ErrorObject } from 'ajv';

declare const validate: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
export default validate;
