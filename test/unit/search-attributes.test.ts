import { SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../../data-schemas/workflows';
import * as searchAttributes from '../../workflows/search-attributes';

function isKey(value: unknown): value is SearchAttributeKey<SearchAttributeType> {
  return typeof value === 'object' && value !== null && 'name' in value && 'type' in value;
}

describe('search attribute keys', () => {
  it('the keys workflows upsert are exactly the attributes the namespace registers, with the same types', () => {
    const keys = Object.values(searchAttributes).flatMap((value: unknown) => (isKey(value) ? [value] : []));
    expect(Object.fromEntries(keys.map((key) => [key.name, TypedSearchAttributes.toMetadataType(key.type)]))).toEqual(SEARCH_ATTRIBUTES);
    expect(searchAttributes.VlaVariants.type).toBe(SearchAttributeType.KEYWORD_LIST);
  });
});
