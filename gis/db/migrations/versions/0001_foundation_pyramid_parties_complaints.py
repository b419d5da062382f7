"""foundation: pyramid, parties, complaints

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 05:44:26.393395
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table('building',
    sa.Column('micro_grid_code', sa.String(length=32), nullable=False),
    sa.Column('compound_code', sa.String(length=32), nullable=True),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('floors', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('leader_name', sa.Text(), nullable=True),
    sa.Column('leader_phone', sa.Text(), nullable=True),
    sa.Column('leader_is_party_member', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_building_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_building')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_building_code_version')
    )
    op.create_index(op.f('ix_building_compound_code'), 'building', ['compound_code'], unique=False)
    op.create_index('ix_building_current_code', 'building', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_building_geom', 'building', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_building_micro_grid_code'), 'building', ['micro_grid_code'], unique=False)
    op.create_table('category',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('name_zh', sa.Text(), nullable=False),
    sa.Column('class_kind', sa.String(length=16), nullable=False),
    sa.Column('major_class', sa.Text(), nullable=False),
    sa.Column('minor_class', sa.Text(), nullable=False),
    sa.Column('responsible_kind', sa.String(length=24), nullable=False),
    sa.Column('deadline_class', sa.String(length=16), nullable=False),
    sa.Column('keywords', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_category'))
    )
    op.create_geospatial_table('community',
    sa.Column('street_code', sa.String(length=32), nullable=False),
    sa.Column('office_phone', sa.Text(), nullable=True),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_community_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_community')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_community_code_version')
    )
    op.create_index('ix_community_current_code', 'community', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_community_geom', 'community', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_community_street_code'), 'community', ['street_code'], unique=False)
    op.create_table('cross_appointment',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('person_name', sa.Text(), nullable=False),
    sa.Column('home_kind', sa.String(length=24), nullable=False),
    sa.Column('home_ref', sa.String(length=40), nullable=False),
    sa.Column('seat_kind', sa.String(length=24), nullable=False),
    sa.Column('seat_ref', sa.String(length=40), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('since', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_appointment'))
    )
    op.create_index(op.f('ix_cross_appointment_home_ref'), 'cross_appointment', ['home_ref'], unique=False)
    op.create_index(op.f('ix_cross_appointment_seat_ref'), 'cross_appointment', ['seat_ref'], unique=False)
    op.create_geospatial_table('district',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_district_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_district')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_district_code_version')
    )
    op.create_index('ix_district_current_code', 'district', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_district_geom', 'district', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('fixture_info',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Text(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('generator_version', sa.Text(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fixture_info'))
    )
    op.create_geospatial_table('grid',
    sa.Column('community_code', sa.String(length=32), nullable=False),
    sa.Column('households', sa.Integer(), server_default='0', nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_grid_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_grid_code_version')
    )
    op.create_index(op.f('ix_grid_community_code'), 'grid', ['community_code'], unique=False)
    op.create_index('ix_grid_current_code', 'grid', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_grid_geom', 'grid', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_geospatial_table('micro_grid',
    sa.Column('grid_code', sa.String(length=32), nullable=False),
    sa.Column('compound_code', sa.String(length=32), nullable=True),
    sa.Column('households', sa.Integer(), server_default='0', nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_micro_grid_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_micro_grid')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_micro_grid_code_version')
    )
    op.create_index(op.f('ix_micro_grid_compound_code'), 'micro_grid', ['compound_code'], unique=False)
    op.create_index('ix_micro_grid_current_code', 'micro_grid', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_micro_grid_geom', 'micro_grid', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_micro_grid_grid_code'), 'micro_grid', ['grid_code'], unique=False)
    op.create_table('owners_committee',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('compound_code', sa.String(length=32), nullable=False),
    sa.Column('formed_on', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('party_member_count', sa.Integer(), nullable=False),
    sa.Column('chair_name', sa.Text(), nullable=False),
    sa.Column('chair_is_party_member', sa.Boolean(), nullable=False),
    sa.CheckConstraint('party_member_count BETWEEN 0 AND member_count', name=op.f('ck_owners_committee_party_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_owners_committee')),
    sa.UniqueConstraint('compound_code', name=op.f('uq_owners_committee_compound_code'))
    )
    op.create_table('party_organisation',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('unit_code', sa.String(length=40), nullable=False),
    sa.Column('secretary_name', sa.Text(), nullable=False),
    sa.Column('secretary_phone', sa.Text(), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('founded_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_party_organisation')),
    sa.UniqueConstraint('code', name=op.f('uq_party_organisation_code'))
    )
    op.create_index(op.f('ix_party_organisation_unit_code'), 'party_organisation', ['unit_code'], unique=False)
    op.create_table('property_company',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('credit_code', sa.String(length=18), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('is_community_led', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('has_party_org', sa.Boolean(), nullable=False),
    sa.Column('party_work_only', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('contact_name', sa.Text(), nullable=True),
    sa.Column('contact_phone', sa.Text(), nullable=True),
    sa.Column('founded_year', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_property_company')),
    sa.UniqueConstraint('credit_code', name=op.f('uq_property_company_credit_code'))
    )
    op.create_geospatial_table('street',
    sa.Column('district_code', sa.String(length=32), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_street_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_street')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_street_code_version')
    )
    op.create_index('ix_street_current_code', 'street', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_index(op.f('ix_street_district_code'), 'street', ['district_code'], unique=False)
    op.create_geospatial_index('ix_street_geom', 'street', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_table('company_evaluation',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('company_id', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('residents_score', sa.Float(), nullable=False),
    sa.Column('regulator_score', sa.Float(), nullable=False),
    sa.Column('street_score', sa.Float(), nullable=False),
    sa.Column('total_score', sa.Float(), nullable=False),
    sa.Column('standing', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['property_company.id'], name=op.f('fk_company_evaluation_company_id_property_company')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_evaluation')),
    sa.UniqueConstraint('company_id', 'period', name='uq_company_evaluation_period')
    )
    op.create_index(op.f('ix_company_evaluation_company_id'), 'company_evaluation', ['company_id'], unique=False)
    op.create_geospatial_table('complaint',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('category_code', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('original_x', sa.Float(), nullable=True),
    sa.Column('original_y', sa.Float(), nullable=True),
    sa.Column('original_crs', sa.String(length=16), nullable=True),
    sa.Column('match_level', sa.String(length=16), nullable=False),
    sa.Column('placement', sa.String(length=16), nullable=False),
    sa.Column('micro_grid_id', sa.BigInteger(), nullable=True),
    sa.Column('micro_grid_code', sa.String(length=32), nullable=True),
    sa.Column('grid_code', sa.String(length=32), nullable=True),
    sa.Column('community_code', sa.String(length=32), nullable=True),
    sa.Column('street_code', sa.String(length=32), nullable=True),
    sa.Column('compound_code', sa.String(length=32), nullable=True),
    sa.Column('building_code', sa.String(length=32), nullable=True),
    sa.Column('reporter_name', sa.Text(), nullable=True),
    sa.Column('reporter_phone', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['category.code'], name=op.f('fk_complaint_category_code_category')),
    sa.ForeignKeyConstraint(['micro_grid_id'], ['micro_grid.id'], name=op.f('fk_complaint_micro_grid_id_micro_grid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint'))
    )
    op.create_index(op.f('ix_complaint_category_code'), 'complaint', ['category_code'], unique=False)
    op.create_index(op.f('ix_complaint_community_code'), 'complaint', ['community_code'], unique=False)
    op.create_index(op.f('ix_complaint_compound_code'), 'complaint', ['compound_code'], unique=False)
    op.create_geospatial_index('ix_complaint_geom', 'complaint', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index('ix_complaint_grid_reported', 'complaint', ['grid_code', 'reported_at'], unique=False)
    op.create_index(op.f('ix_complaint_micro_grid_code'), 'complaint', ['micro_grid_code'], unique=False)
    op.create_index(op.f('ix_complaint_micro_grid_id'), 'complaint', ['micro_grid_id'], unique=False)
    op.create_index('ix_complaint_reported_at', 'complaint', ['reported_at'], unique=False)
    op.create_index(op.f('ix_complaint_street_code'), 'complaint', ['street_code'], unique=False)
    op.create_index('uq_complaint_source_external', 'complaint', ['source', 'external_id'], unique=True, postgresql_where=sa.text('external_id IS NOT NULL'))
    op.create_geospatial_table('compound',
    sa.Column('community_code', sa.String(length=32), nullable=False),
    sa.Column('grid_code', sa.String(length=32), nullable=False),
    sa.Column('aliases', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('build_year', sa.Integer(), nullable=False),
    sa.Column('is_old_estate', sa.Boolean(), nullable=False),
    sa.Column('floor_area_m2', sa.Float(), nullable=False),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('management_mode', sa.String(length=16), nullable=False),
    sa.Column('property_company_id', sa.BigInteger(), nullable=True),
    sa.Column('property_fee_yuan_m2', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), server_default=sa.text("DATE '2000-01-01'"), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_compound_validity')),
    sa.ForeignKeyConstraint(['property_company_id'], ['property_company.id'], name=op.f('fk_compound_property_company_id_property_company')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compound')),
    sa.UniqueConstraint('code', 'valid_from', name='uq_compound_code_version')
    )
    op.create_index(op.f('ix_compound_community_code'), 'compound', ['community_code'], unique=False)
    op.create_index('ix_compound_current_code', 'compound', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_geospatial_index('ix_compound_geom', 'compound', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_compound_grid_code'), 'compound', ['grid_code'], unique=False)
    op.create_index(op.f('ix_compound_property_company_id'), 'compound', ['property_company_id'], unique=False)
    op.create_table('grid_worker',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('phone', sa.Text(), nullable=False),
    sa.Column('grid_code', sa.String(length=32), nullable=False),
    sa.Column('is_party_member', sa.Boolean(), nullable=False),
    sa.Column('is_part_time', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('property_company_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['property_company_id'], ['property_company.id'], name=op.f('fk_grid_worker_property_company_id_property_company')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_worker'))
    )
    op.create_index(op.f('ix_grid_worker_grid_code'), 'grid_worker', ['grid_code'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_grid_worker_grid_code'), table_name='grid_worker')
    op.drop_table('grid_worker')
    op.drop_index(op.f('ix_compound_property_company_id'), table_name='compound')
    op.drop_index(op.f('ix_compound_grid_code'), table_name='compound')
    op.drop_geospatial_index('ix_compound_geom', table_name='compound', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_compound_current_code', table_name='compound', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_compound_community_code'), table_name='compound')
    op.drop_geospatial_table('compound')
    op.drop_index('uq_complaint_source_external', table_name='complaint', postgresql_where=sa.text('external_id IS NOT NULL'))
    op.drop_index(op.f('ix_complaint_street_code'), table_name='complaint')
    op.drop_index('ix_complaint_reported_at', table_name='complaint')
    op.drop_index(op.f('ix_complaint_micro_grid_id'), table_name='complaint')
    op.drop_index(op.f('ix_complaint_micro_grid_code'), table_name='complaint')
    op.drop_index('ix_complaint_grid_reported', table_name='complaint')
    op.drop_geospatial_index('ix_complaint_geom', table_name='complaint', postgresql_using='gist', column_name='geom')
    op.drop_index(op.f('ix_complaint_compound_code'), table_name='complaint')
    op.drop_index(op.f('ix_complaint_community_code'), table_name='complaint')
    op.drop_index(op.f('ix_complaint_category_code'), table_name='complaint')
    op.drop_geospatial_table('complaint')
    op.drop_index(op.f('ix_company_evaluation_company_id'), table_name='company_evaluation')
    op.drop_table('company_evaluation')
    op.drop_geospatial_index('ix_street_geom', table_name='street', postgresql_using='gist', column_name='geom')
    op.drop_index(op.f('ix_street_district_code'), table_name='street')
    op.drop_index('ix_street_current_code', table_name='street', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_geospatial_table('street')
    op.drop_table('property_company')
    op.drop_index(op.f('ix_party_organisation_unit_code'), table_name='party_organisation')
    op.drop_table('party_organisation')
    op.drop_table('owners_committee')
    op.drop_index(op.f('ix_micro_grid_grid_code'), table_name='micro_grid')
    op.drop_geospatial_index('ix_micro_grid_geom', table_name='micro_grid', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_micro_grid_current_code', table_name='micro_grid', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_micro_grid_compound_code'), table_name='micro_grid')
    op.drop_geospatial_table('micro_grid')
    op.drop_geospatial_index('ix_grid_geom', table_name='grid', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_grid_current_code', table_name='grid', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_grid_community_code'), table_name='grid')
    op.drop_geospatial_table('grid')
    op.drop_table('fixture_info')
    op.drop_geospatial_index('ix_district_geom', table_name='district', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_district_current_code', table_name='district', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_geospatial_table('district')
    op.drop_index(op.f('ix_cross_appointment_seat_ref'), table_name='cross_appointment')
    op.drop_index(op.f('ix_cross_appointment_home_ref'), table_name='cross_appointment')
    op.drop_table('cross_appointment')
    op.drop_index(op.f('ix_community_street_code'), table_name='community')
    op.drop_geospatial_index('ix_community_geom', table_name='community', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_community_current_code', table_name='community', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_geospatial_table('community')
    op.drop_table('category')
    op.drop_index(op.f('ix_building_micro_grid_code'), table_name='building')
    op.drop_geospatial_index('ix_building_geom', table_name='building', postgresql_using='gist', column_name='geom')
    op.drop_index('ix_building_current_code', table_name='building', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_index(op.f('ix_building_compound_code'), table_name='building')
    op.drop_geospatial_table('building')
